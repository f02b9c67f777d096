"""Where an embedding becomes a match: scoring against a bank of references minus lookalikes,
threshold, NMS, top-K. Torch-free.
"""
