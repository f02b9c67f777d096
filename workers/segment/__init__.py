"""Where a click becomes a mask and an image becomes proposals: the Segmenter protocol and SAM
2.1 (torch lives in the sam2_* modules).
"""
