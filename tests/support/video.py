"""Videos made in a test from rendered frames, with PyAV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def encode_video(frames: Sequence[np.ndarray], path: Path, fps: int = 8,
                 lossless: bool = True, display_rotation: int = 0) -> Path:
    """Write ``(H, W, 3)`` uint8 RGB frames as an MP4 (even width and height).

    Args:
        lossless: H.264 in RGB at quantiser 0 (``libx264rgb``): decoding gives back the
            frames bit for bit; else ordinary lossy H.264 in YUV 4:2:0.
        display_rotation: the counter-clockwise turn, in degrees, recorded in the
            stream's display matrix for players to apply, as a phone filming upright
            records it.
    """
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb" if lossless else "libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb24" if lossless else "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"} if lossless else {"crf": "18"}
        if display_rotation:
            stream.set_display_rotation(display_rotation)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
