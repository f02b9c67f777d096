"""Torch-free math: masks and boxes, FFA pooling, panorama geometry. NumPy (and OpenCV) only."""
