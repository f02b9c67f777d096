"""The two kinds of failure prodseg knows.

``InputError`` is permanent: the input itself is wrong (a corrupt image, a click outside
the picture, a bad setting). Retrying cannot help; the message names the file or the
setting and says what is wrong. ``TransientError`` is infrastructure that may recover
(a storage endpoint that did not answer); the distributed mode retries those.
"""

from __future__ import annotations


class ProdsegError(Exception):
    """Base class of every error prodseg raises on purpose."""


class InputError(ProdsegError):
    """A permanent problem with what the user gave: retrying will not help."""


class ImageReadError(InputError):
    """An image file could not be read or decoded.

    Args:
        source: the path or key of the image.
        reason: what is wrong with it, in words a user understands.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class PromptError(InputError):
    """The click or box does not describe a region of the reference image."""


class SettingsError(InputError):
    """A setting has an invalid value; the message names the setting."""


class WeightsError(InputError):
    """Model weights are missing or corrupt; the message names the command that fixes it."""


class TransientError(ProdsegError):
    """Infrastructure that may recover on retry (storage, broker)."""
