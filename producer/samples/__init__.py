"""Rendered test scenes with ground truth: a spin set on a shelf, its artwork, an aisle
panorama.
"""
