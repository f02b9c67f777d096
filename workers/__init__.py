"""What a worker holds and does: models, segmentation, FFA embedding, matching, pipeline.

Importing this package is cheap: torch, sam2 and timm are imported only by the modules
that build models, when a model is built.
"""
