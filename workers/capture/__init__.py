"""Captures: the order views are visited in, spin tracking (SAM 2.1's video predictor in
sam2_video), spin results.
"""
