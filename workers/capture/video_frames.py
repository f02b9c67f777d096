"""A video capture turned into a job's views: the frames taken (settings ``frames`` or
``every``, blurred ones swapped for sharp neighbours) and the reference frame named.

``prodseg run`` and the client (``JobClient.prepare``, catalogs too) both call
``video_inputs`` before ``prodseg.job_spec.build_job_spec``: the frames' sources stand for
the video, and the job is built and checked from them as from stills. Torch-free; the
video itself is decoded by ``storage.video`` (PyAV).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from prodseg.errors import InputError
from prodseg.settings import Settings
from prodseg.storage.video import (
    VideoCapture,
    VideoFrame,
    VideoInput,
    frame_view_id,
    is_video,
    iter_video_frames,
)
from prodseg.workers.ops.sharpness import frame_sharpness, sample_indices


def the_video(images: Sequence[str]) -> str | None:
    """The video among a job's inputs, or None when they are stills.

    Raises:
        InputError: a video given with other inputs (a video is a capture on its own).
    """
    videos = [i for i in images if is_video(i)]
    if not videos:
        return None
    if len(images) > 1:
        raise InputError(f"{videos[0]}: a video is a whole capture; give it alone in "
                         "--images (one video per job)")
    return videos[0]


def sample_video(video: VideoInput, source: str, settings: Settings
                 ) -> tuple[VideoCapture, dict[str, np.ndarray]]:
    """Take a video's frames as the settings say: ``frames`` evenly, or ``every``-th,
    each blurred one swapped for the sharpest of its neighbours (``ops.sharpness``).

    Args:
        video: the file or its bytes.
        source: the video as the user named it.
        settings: ``frames``, ``every`` and ``max_image_pixels``.

    Returns:
        The capture (frames in filmed order, views ``frame_0000``, ...) and each frame's
        ``(H, W, 3)`` uint8 pixels, by frame source.

    Raises:
        ImageReadError: the video cannot be read (naming it).
    """
    limit = settings.max_image_pixels
    timed = [(time_s, frame_sharpness(pixels))
             for _, time_s, pixels in iter_video_frames(video, source, limit)]
    chosen = sample_indices([s for _, s in timed], settings.frames, settings.every)
    frames = tuple(VideoFrame(frame_view_id(k), index, timed[index][0])
                   for k, index in enumerate(chosen))
    capture = VideoCapture(source, frames)
    position = {frame.index: frame for frame in frames}
    pixels = {capture.frame_source(position[index]): image
              for index, _, image in iter_video_frames(video, source, limit, set(chosen))}
    return capture, pixels


@dataclass(frozen=True)
class VideoInputs:
    """A video job's inputs, as a job of stills would give them.

    Attributes:
        capture: the video and the frames taken.
        reference: the reference frame's source.
        pixels: each frame's pixels, by source.
    """

    capture: VideoCapture
    reference: str
    pixels: Mapping[str, np.ndarray]

    @property
    def images(self) -> list[str]:
        """The frames' sources, in filmed order."""
        return self.capture.sources

    def read(self, source: str) -> np.ndarray:
        """A frame's pixels, by source.

        Raises:
            InputError: ``source`` is none of the frames.
        """
        if source not in self.pixels:
            raise InputError(f"{source}: not one of the frames taken from "
                             f"{self.capture.source}")
        return self.pixels[source]


def video_inputs(images: Sequence[str], reference: str, settings: Settings,
                 read: Callable[[str], VideoInput]) -> VideoInputs | None:
    """The frames of the video among ``images``, or None when they are stills.

    Args:
        images: the job's inputs as given.
        reference: the reference frame: a view id (``frame_0000``), a frame source, a
            position among the frames taken (``3``) or a time (``2.5s``).
        settings: how frames are taken (``sample_video``).
        read: the video as a local file or its bytes, from its name.

    Raises:
        InputError: a video among other inputs, an unreadable video, or a reference
            that names none of the frames (each naming the video).
    """
    video = the_video(images)
    if video is None:
        return None
    capture, pixels = sample_video(read(video), video, settings)
    frame = capture.named(str(reference))
    return VideoInputs(capture, capture.frame_source(frame), pixels)
