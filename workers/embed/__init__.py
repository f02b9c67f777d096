"""Where a mask becomes an embedding: the PatchBackbone protocol, DINOv2 (torch, in dinov2) and
the FFA embedder on top of any backbone.
"""
