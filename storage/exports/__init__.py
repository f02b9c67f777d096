"""What a job's results look like outside: result documents, mask and cutout PNGs, COCO, the
gallery, the catalog report.
"""
