"""Deterministic stand-ins for SAM2 and DINOv2 from classic image processing (OpenCV, no
torch): tests and plumbing checks.
"""
