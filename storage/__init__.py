"""Where a job's outputs go and what they look like; nothing here imports torch.

``base`` defines the ``ObjectStore`` interface and key rules, ``local`` and ``s3`` the two
stores, ``factory`` opens either from a location; ``layout`` names every output key of a
job, ``manifest`` a distributed job's bookkeeping, ``images`` decodes photos and encodes
mask PNGs; ``exports`` turns results into documents, COCO, thumbnails and pages.
"""
