"""The user's side, without torch: the command line (``cli``), the distributed-mode client,
store catalogs (``catalog``), the windows (``ui``) and rendered sample scenes (``samples``)."""
