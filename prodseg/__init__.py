"""prodseg: segment one product across every photo of a 360° capture.

This package holds the vocabulary every side shares and that imports without torch:
settings, errors, prompts and result records. The models live in ``workers``, the
object stores and exports in ``storage``, the command line in ``producer``.
"""

__version__ = "0.1.0"
