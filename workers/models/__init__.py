"""Model weights (download, verify), the builders of SAM 2.1 and DINOv2, and the factory from
settings to backends.
"""
