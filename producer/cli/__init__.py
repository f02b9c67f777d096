"""The ``prodseg`` command line: ``main`` is in ``cli.main``, one module per command group."""
