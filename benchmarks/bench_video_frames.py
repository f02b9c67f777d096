"""Video captures: what taking the frames costs the client, and a frame a worker.

A rendered spin is filmed: ``--frames`` video frames of ``--size``, the carton turning a
full circle, encoded as H.264 (``--keyint``: frames between keyframes; phones write one
every second or so), with one frame in ``--blur-every`` (chosen at random, seeded)
motion-blurred: a 25-pixel horizontal smear. Measured:

- take: ``workers.capture.video_frames.sample_video`` with ``--take`` frames (decode every
  frame, its sharpness, then decode the frames taken): seconds per video frame, and
  which blurred frames it avoided;
- seek: ``storage.video.read_video_frame`` of each frame taken, as a worker reads its
  view (sought by time from the keyframe before it): ms per view;
- from start: the same frames decoded from the video's start (what a worker would pay
  without seeking): ms per view.

    python benchmarks/bench_video_frames.py --size 1920x1080 --frames 240 --take 24
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def film(path: Path, size: tuple[int, int], frames: int, keyint: int, blur_every: int,
         fps: int = 30) -> set[int]:
    """Encode the spin; returns the indices of the blurred frames."""
    import av

    from prodseg.producer.samples.scene import render_spin_set

    width, height = size
    spin = render_spin_set(n_views=frames, height=height, width=width,
                           n_distractor_only=0, seed=0)
    rng = np.random.default_rng(0)  # a random 1 in blur_every frames, as a hand shakes
    blurred = {int(k) for k in rng.choice(frames, frames // blur_every, replace=False)
               } if blur_every else set()
    kernel = np.zeros((1, 25), np.float32)
    kernel[0, :] = 1 / 25
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast", "g": str(keyint),
                          "keyint_min": str(keyint), "bf": "0"}
        for k, view in enumerate(spin.views):
            image = np.asarray(cv2.filter2D(view.image, -1, kernel) if k in blurred
                               else view.image, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return blurred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1920x1080", help="the video's size WxH")
    parser.add_argument("--frames", type=int, default=240, help="video frames")
    parser.add_argument("--take", type=int, default=24, help="frames to take (--frames)")
    parser.add_argument("--keyint", type=int, default=30, help="frames between keyframes")
    parser.add_argument("--blur-every", type=int, default=5,
                        help="one video frame in k motion-blurred (0: none)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from prodseg.settings import load_settings
    from prodseg.storage.video import VideoFrame, read_video_frame
    from prodseg.workers.capture.video_frames import sample_video

    size = (int(v) for v in args.size.split("x"))
    width, height = size
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spin.mp4"
        blurred = film(path, (width, height), args.frames, args.keyint, args.blur_every)
        data = path.read_bytes()
        settings = load_settings(frames=args.take)
        start = time.perf_counter()
        capture, _ = sample_video(data, "spin.mp4", settings)
        take_s = time.perf_counter() - start
        taken = [f.index for f in capture.frames]
        limit = settings.max_image_pixels
        start = time.perf_counter()
        for frame in capture.frames:
            read_video_frame(data, "spin.mp4", frame, limit)
        seek_ms = 1000 * (time.perf_counter() - start) / len(taken)
        start = time.perf_counter()
        for frame in capture.frames:  # a time no frame has: decoded from the start
            read_video_frame(data, "spin.mp4", VideoFrame(frame.view_id, frame.index, -1.0),
                             limit)
        start_ms = 1000 * (time.perf_counter() - start) / len(taken)
    figures = {"size": f"{width}x{height}", "video_frames": args.frames, "taken": len(taken),
               "keyint": args.keyint, "mb": round(len(data) / 1e6, 2),
               "take_ms_per_video_frame": round(1000 * take_s / args.frames, 2),
               "blurred_frames": len(blurred),
               "blurred_taken": len(set(taken) & blurred),
               "even_positions_blurred": sum(
                   int(k * args.frames / args.take) in blurred for k in range(args.take)),
               "seek_ms_per_view": round(seek_ms, 1),
               "from_start_ms_per_view": round(start_ms, 1)}
    print(f"{figures['size']}, {args.frames} frames ({figures['mb']} MB, keyframe every "
          f"{args.keyint}), {len(taken)} taken")
    print(f"  take: {figures['take_ms_per_video_frame']} ms per video frame; "
          f"{figures['even_positions_blurred']} even positions fell on a blurred frame, "
          f"{figures['blurred_taken']} blurred frames taken")
    print(f"  a worker's frame: {figures['seek_ms_per_view']} ms sought, "
          f"{figures['from_start_ms_per_view']} ms decoded from the start")
    if args.json:
        args.json.write_text(json.dumps(figures))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
