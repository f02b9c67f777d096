"""What a worker holds and does, one package per stage: segment -> embed -> match, over
captures (``capture``), with torch-free math in ``ops``, stand-ins in ``classic``, model
weights and builders in ``models``, and the job plan both modes run in ``plan``.

Importing this package is cheap: torch, sam2 and timm are imported only by the modules
that build or run a model, when they are imported.
"""
