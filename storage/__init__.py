"""Object storage and exports: where a job's outputs go and what they look like.

``base`` defines the small ``ObjectStore`` interface and key rules, ``local`` stores
objects as files in a directory, ``s3`` in an S3-compatible bucket (boto3), ``factory``
opens either from a location (``s3://bucket/prefix`` or a path), ``layout`` names every
output key of one job, ``images`` decodes and encodes image bytes, and ``exports``,
``coco`` and ``gallery`` turn results into PNGs, JSON and HTML.
Nothing here imports torch.
"""
