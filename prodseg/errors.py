"""The two kinds of failure prodseg knows.

``InputError`` is permanent: the input itself is wrong (a corrupt image, a click outside
the picture, a bad setting). Retrying cannot help; the message names the file or the
setting and says what is wrong. ``TransientError`` is infrastructure that may recover
(a storage endpoint that did not answer, a device out of memory); the distributed mode
retries those. ``as_device_error`` decides which failures of a model are the device's:
those are transient, never a photo's permanent failure.
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


class BucketMissingError(InputError):
    """The bucket is not there: a wrong name at submission, or, for a running job, a lost
    bucket that took the job's inputs with it (resuming cannot help then)."""


class TransientError(ProdsegError):
    """Infrastructure that may recover on retry (storage, broker)."""


class DeviceError(TransientError):
    """The accelerator failed (out of memory, a lost or broken context): the work is
    retried, elsewhere if need be, and the worker process that saw it is replaced."""


DEVICE_FAILURES = ("out of memory", "cuda error", "cudnn_status", "cublas_status",
                   "cudnn error", "device-side assert", "hip error", "nccl error",
                   "an illegal memory access")
"""Words in a ``RuntimeError``'s message that mark a failure of the device itself (as
PyTorch and its CUDA and ROCm back ends word them), not of the data."""


def as_device_error(exc: BaseException) -> DeviceError | None:
    """``exc`` as a ``DeviceError`` when the device failed, else None.

    A device failure is torch's ``OutOfMemoryError`` (matched by name: this module
    imports no torch) or a ``RuntimeError`` whose message says the device failed
    (``DEVICE_FAILURES``).
    """
    if isinstance(exc, DeviceError):
        return exc
    name = type(exc).__name__
    message = str(exc).lower()
    if name == "OutOfMemoryError" or (isinstance(exc, RuntimeError)
                                      and any(w in message for w in DEVICE_FAILURES)):
        return DeviceError(f"device failure: {name}: {exc}")
    return None


def recovery_hint(error: BaseException, job: str) -> str:
    """What the user can do about a job that ``error`` stopped, as a clause to append to
    its message ("" when nothing but fixing the input helps).

    Resuming helps only where infrastructure failed and may come back: the stored inputs
    are still there. A lost bucket took the inputs with it; a bad input fails again.
    """
    if isinstance(error, BucketMissingError):
        return "; the job's inputs were in that bucket, so it must be submitted again"
    if isinstance(error, InputError):
        return ""
    return f"; run `prodseg resume {job}` to go on once the store and the broker answer"
