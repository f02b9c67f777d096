"""Label Studio tasks with prodseg's matches as predictions, and their masks' brush RLE.

One task per view (``data.image`` the photo; ``data.product``, ``view``, ``job``,
``reference`` and ``flagged`` to filter on). Each match is one prediction region twice:
a brush mask (``brushlabels``, Label Studio's RLE) with id ``m<k>`` and its outline
(``polygonlabels``, ``storage.exports.outline``, in percent of the image) with id
``m<k>-outline``, both labelled with the product. ``labeling_config`` is the project's
labeling interface, which names the same controls.

Label Studio's brush RLE is thi.ng's ``rle-pack`` over the mask's RGBA bytes (the mask
repeated into 4 channels): a 32-bit value count, a 5-bit word size minus one, four 4-bit
run-length sizes minus one, then chunks. ``brush_rle`` writes repeat chunks only;
``decode_brush_rle`` reads both kinds, as a reviewer's drawing may hold literal ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np

_RUN_BITS = (3, 4, 8, 16)
MASK_CONTROL, OUTLINE_CONTROL, IMAGE_OBJECT = "mask", "outline", "image"


def brush_rle(mask: np.ndarray) -> list[int]:
    """A mask in Label Studio's brush RLE.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        The RLE bytes as ints 0..255 (``value.rle`` of a ``brushlabels`` region).
    """
    values = np.repeat(np.asarray(mask, dtype=bool).ravel(), 4).astype(np.uint8) * 255
    bits: list[str] = [f"{values.size:032b}", f"{7:05b}",
                       *(f"{b - 1:04b}" for b in _RUN_BITS)]
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [values.size]])
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        value = int(values[start])
        while start < end:
            run = min(end - start, 1 << _RUN_BITS[-1])
            size = next(k for k, b in enumerate(_RUN_BITS) if run - 1 < 1 << b)
            bits.append(f"1{size:02b}{run - 1:0{_RUN_BITS[size]}b}{value:08b}")
            start += run
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return [int(stream[i:i + 8], 2) for i in range(0, len(stream), 8)]


def decode_brush_rle(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """The mask a brush RLE holds: a pixel is set when its alpha byte is not 0.

    Args:
        rle: the RLE bytes.
        height: the image's height.
        width: the image's width.

    Returns:
        ``(height, width)`` bool.

    Raises:
        ValueError: the RLE does not hold ``height * width`` RGBA pixels.
    """
    stream = "".join(f"{int(b) & 0xFF:08b}" for b in rle)
    at = 0

    def read(n: int) -> int:
        nonlocal at
        if at + n > len(stream):
            raise ValueError("brush RLE ends early")
        value = int(stream[at:at + n], 2) if n else 0
        at += n
        return value

    count, word = read(32), read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    if count != height * width * 4:
        raise ValueError(f"brush RLE holds {count} values, not {height}x{width}x4")
    out = np.zeros(count, dtype=np.uint8)
    i = 0
    while i < count:
        repeat = read(1)
        j = min(count, i + 1 + read(sizes[read(2)]))
        if repeat:
            out[i:j] = read(word) & 0xFF
        else:
            for k in range(i, j):
                out[k] = read(word) & 0xFF
        i = j
    return out.reshape(height, width, 4)[:, :, 3] > 0


def match_regions(number: int, mask: np.ndarray, outline: np.ndarray | None, label: str,
                  score: float) -> list[dict[str, object]]:
    """One match as prediction regions: its brush mask and its outline polygon.

    Args:
        number: the match's index on its view (the regions' ids are ``m<number>...``).
        mask: ``(H, W)`` bool.
        outline: ``(N, 2)`` ``(x, y)`` corners in pixels, or None (no polygon region).
        label: the product id.
        score: the match's score.
    """
    height, width = mask.shape
    common = {"to_name": IMAGE_OBJECT, "original_width": width, "original_height": height,
              "image_rotation": 0, "score": score}
    regions: list[dict[str, object]] = [{
        "id": f"m{number}", "from_name": MASK_CONTROL, "type": "brushlabels", **common,
        "value": {"format": "rle", "rle": brush_rle(mask), "brushlabels": [label]}}]
    if outline is not None:
        points = (outline / np.array([width, height]) * 100.0).round(4).tolist()
        regions.append({"id": f"m{number}-outline", "from_name": OUTLINE_CONTROL,
                        "type": "polygonlabels", **common,
                        "value": {"points": points, "closed": True,
                                  "polygonlabels": [label]}})
    return regions


def review_task(image: str, data: dict[str, object], regions: Sequence[dict[str, object]],
                score: float | None, model_version: str) -> dict[str, object]:
    """One view's task: the photo, the facts to filter on, and the matches as a prediction.

    Args:
        image: the photo's URL (``s3://...`` or ``/data/local-files/?d=...``).
        data: ``product``, ``view``, ``job``, ``reference``, ``flagged`` and the like.
        regions: the matches' regions (``match_regions``); none: a prediction of nothing.
        score: the view's best match score (None without a match).
        model_version: prodseg's version and the models that made the matches.
    """
    prediction: dict[str, object] = {"model_version": model_version, "result": list(regions)}
    if score is not None:
        prediction["score"] = score
    return {"data": {IMAGE_OBJECT: image, **data}, "predictions": [prediction]}


def labeling_config(labels: Sequence[str]) -> str:
    """The labeling interface the tasks fit: the image, brush and polygon labels."""
    tags = "".join(f"    <Label value={quoteattr(name)}/>\n" for name in labels)

    return (f'<View>\n  <Image name="{IMAGE_OBJECT}" value="${IMAGE_OBJECT}" zoom="true"/>\n'
            f'  <BrushLabels name="{MASK_CONTROL}" toName="{IMAGE_OBJECT}">\n'
            f'{tags}  </BrushLabels>\n'
            f'  <PolygonLabels name="{OUTLINE_CONTROL}" toName="{IMAGE_OBJECT}">\n'
            f'{tags}  </PolygonLabels>\n</View>\n')
