"""A ``Segmenter`` for equirectangular panoramas, wrapping one made for ordinary photos.

The panorama is cut into overlapping perspective tiles (``prodseg.workers.ops.panorama``); the inner
segmenter (SAM2, or ``ContourSegmenter`` in tests) runs on each, and its masks come back
to the panorama, where duplicates from overlapping tiles are joined. A product on the
seam comes back as one ``(H, W)`` mask in two pieces at the left and right edges. All
geometry lives in ``prodseg.workers.ops.panorama``; this module only orchestrates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from prodseg.prompts import Prompt
from prodseg.workers.ops.equirectangular import is_panorama_size
from prodseg.workers.ops.panorama import (
    Footprint,
    Shape,
    Tile,
    angles_to_vectors,
    angular_margin,
    panorama_point_to_tile,
    pixel_to_angles,
    render_tile,
    tile_basis,
    tile_footprint,
    tile_layout,
    tile_mask_to_panorama,
    tile_to_vectors,
    vectors_to_tile,
)
from prodseg.workers.ops.seam import join_pixel_lists, pixel_lists_to_masks
from prodseg.workers.segment.protocol import Proposals, SegmentedMask, Segmenter


class PanoramaSegmenter:
    """Runs a photo segmenter on perspective tiles of a panorama (a ``Segmenter``).

    Args:
        inner: the segmenter for ordinary photos (SAM2, or ``ContourSegmenter`` in tests).
        tiles: tiles for ``propose`` and ``propose_at``; ``tile_layout()`` if None.
        join_iou: IoU at which masks from two tiles are one object (``join_duplicates``).
        drop_cut: in ``propose``, drop proposals touching their tile's edge: the layout
            shows every object smaller than about half the overlap whole in another tile,
            and a cut one is a fragment. Objects larger than that may then be lost.
        edge_px: how close to the edge counts as touching, tile pixels.
        owner_slack_deg: in ``propose``, keep a proposal only from a tile that sees its
            centre at most this much less deep (``angular_margin``) than the tile that
            sees it best. Parts of objects that a tile sees near its edge are thus left
            to the tile that sees the whole. None keeps every tile's proposals.

    Images that are not panoramas (``is_equirectangular``) go to ``inner`` unchanged, so one
    segmenter serves a capture whose reference is an ordinary photo.
    """

    def __init__(self, inner: Segmenter, tiles: Sequence[Tile] | None = None,
                 join_iou: float = 0.5, drop_cut: bool = True, edge_px: int = 1,
                 owner_slack_deg: float | None = 3.0) -> None:
        self.inner = inner
        self.tiles = list(tiles) if tiles is not None else tile_layout()
        if not self.tiles:
            raise ValueError("need at least one tile")
        self.join_iou = join_iou
        self.drop_cut = drop_cut
        self.edge_px = edge_px
        self.owner_slack_deg = owner_slack_deg
        self._footprints: dict[tuple[Tile, Shape], Footprint] = {}

    def _footprint(self, tile: Tile, shape: Shape) -> Footprint:
        key = (tile, shape)
        if key not in self._footprints:
            self._footprints[key] = tile_footprint(tile, shape)
        return self._footprints[key]

    def _cut(self, mask: np.ndarray) -> bool:
        e = self.edge_px
        return bool(mask[:e].any() or mask[-e:].any() or mask[:, :e].any() or mask[:, -e:].any())

    def _collect(self, pano: np.ndarray, found: list[tuple[Tile, Proposals]], drop_cut: bool,
                 negatives: np.ndarray | None = None) -> Proposals:
        """Project tile proposals back, drop empty (and cut) ones, join duplicates."""
        shape: Shape = (pano.shape[0], pano.shape[1])
        pixels: list[np.ndarray] = []
        scores: list[float] = []
        for tile, props in found:
            fp = self._footprint(tile, shape)
            flat = fp.rows * shape[1] + fp.cols  # ascending: footprints are in raster order
            for mask, score in zip(props.masks, props.scores, strict=True):
                if drop_cut and self._cut(mask):
                    continue
                px = flat[mask[fp.tile_rows, fp.tile_cols]]
                if px.size:
                    pixels.append(px)
                    scores.append(float(score))
        if negatives is not None and len(negatives):
            bad = _pixel_index(negatives, shape)
            keep = [i for i, px in enumerate(pixels) if not np.isin(bad, px).any()]
            pixels, scores = [pixels[i] for i in keep], [scores[i] for i in keep]
        kept, kept_scores = join_pixel_lists(pixels, np.asarray(scores), shape[1], self.join_iou)
        return Proposals(pixel_lists_to_masks(kept, shape), np.asarray(kept_scores, np.float32))

    def propose(self, image: np.ndarray) -> Proposals:
        """Proposals of every tile on the ``(H, W, 3)`` panorama, as ``(N, H, W)`` masks."""
        if not is_equirectangular(image.shape):
            return self.inner.propose(image)
        found = [(tile, self._owned(tile, self.inner.propose(render_tile(image, tile))))
                 for tile in self.tiles]
        return self._collect(image, found, self.drop_cut)

    def _owned(self, tile: Tile, proposals: Proposals) -> Proposals:
        """The proposals whose centre ``tile`` sees (nearly) as deep as any other tile."""
        if self.owner_slack_deg is None or len(proposals) == 0:
            return proposals
        centres = []
        for mask in proposals.masks:
            v, u = np.nonzero(mask)
            centres.append(tile_to_vectors(u.mean(), v.mean(), tile) if u.size
                           else tile_to_vectors(0.0, 0.0, tile))
        dirs = np.stack(centres)
        deepest = np.stack([angular_margin(dirs, t) for t in self.tiles]).max(axis=0)
        keep = angular_margin(dirs, tile) >= deepest - self.owner_slack_deg
        return Proposals(proposals.masks[keep], proposals.scores[keep])

    def propose_at(self, image: np.ndarray, positives: np.ndarray,
                   negatives: np.ndarray) -> Proposals:
        """Prompted proposals; each positive point goes to the tile it is deepest inside.

        Proposals cut by their tile's edge are kept here (the points were chosen; a
        partial mask beats none). Those holding a negative point are dropped.

        Args:
            image: ``(H, W, 3)`` uint8 panorama.
            positives: ``(P, 2)`` ``(x, y)`` panorama pixels.
            negatives: ``(Q, 2)`` ``(x, y)`` pixels that no proposal may contain.
        """
        if not is_equirectangular(image.shape):
            return self.inner.propose_at(image, positives, negatives)
        shape: Shape = (image.shape[0], image.shape[1])
        pos = np.asarray(positives, np.float64).reshape(-1, 2)
        neg = np.asarray(negatives, np.float64).reshape(-1, 2)
        dirs = {name: angles_to_vectors(*pixel_to_angles(p[:, 0], p[:, 1], shape))
                for name, p in (("pos", pos), ("neg", neg))}
        best = np.stack([angular_margin(dirs["pos"], t) for t in self.tiles]).argmax(0) \
            if len(pos) else np.zeros(0, np.int64)
        found = []
        for k in np.unique(best):
            tile = self.tiles[int(k)]
            u, v, _ = vectors_to_tile(dirs["pos"][best == k], tile)
            nu, nv, n_in = vectors_to_tile(dirs["neg"], tile)
            props = self.inner.propose_at(render_tile(image, tile), np.stack([u, v], 1),
                                          np.stack([nu[n_in], nv[n_in]], 1))
            found.append((tile, props))
        return self._collect(image, found, False, neg)

    def segment(self, image: np.ndarray, prompt: Prompt) -> SegmentedMask:
        """Segment in a tile centred on the prompt (first positive point, else box centre).

        Points the tile does not see are left out; a box is replaced by the tile box of
        its outline (its ``x1`` may exceed ``W`` to wrap across the seam).

        Returns:
            ``(H, W)`` bool mask on the panorama and the inner segmenter's score; which
            candidate it is, but not the candidates' areas (they are the tile's).
        """
        if not is_equirectangular(image.shape):
            return self.inner.segment(image, prompt)
        shape: Shape = (image.shape[0], image.shape[1])
        tile = self.centred_tile(prompt, shape)
        points, labels = [], []
        for (x, y), label in zip(prompt.points, prompt.labels, strict=True):
            uv = panorama_point_to_tile(x, y, tile, shape)
            if uv is not None:
                points.append(uv)
                labels.append(label)
        box = None if prompt.box is None else box_to_tile(prompt.box, tile, shape)
        segmented = self.inner.segment(render_tile(image, tile),
                                       Prompt(tuple(points), tuple(labels), box,
                                              prompt.candidate))
        mask = tile_mask_to_panorama(segmented.mask, tile, shape)
        return SegmentedMask(mask, segmented.score, candidate=segmented.candidate)

    def centred_tile(self, prompt: Prompt, shape: Shape) -> Tile:
        """The tile (fov and size of the first layout tile) looking at the prompt."""
        positives = [p for p, label in zip(prompt.points, prompt.labels, strict=True) if label]
        if positives:
            x, y = positives[0]
        elif prompt.box is not None:
            x, y = (prompt.box[0] + prompt.box[2]) / 2, (prompt.box[1] + prompt.box[3]) / 2
        else:
            x, y = prompt.points[0]
        yaw, pitch = pixel_to_angles(np.float64(x), np.float64(y), shape)
        first = self.tiles[0]
        return Tile(math.degrees(float(yaw)), math.degrees(float(pitch)), first.fov, first.size)


def _pixel_index(points: np.ndarray, shape: Shape) -> np.ndarray:
    """``(N, 2)`` ``(x, y)`` panorama points -> ``(N,)`` flat indices of their pixels."""
    cols = np.mod(np.rint(points[:, 0]).astype(np.int64), shape[1])
    rows = np.clip(np.rint(points[:, 1]).astype(np.int64), 0, shape[0] - 1)
    return rows * shape[1] + cols


def is_equirectangular(shape: tuple[int, ...]) -> bool:
    """Whether an image of this ``(H, W, ...)`` shape is a full panorama
    (``ops.equirectangular.is_panorama_size``)."""
    return len(shape) >= 2 and is_panorama_size(shape[1], shape[0])


def box_to_tile(box: tuple[float, float, float, float], tile: Tile, shape: Shape
                ) -> tuple[float, float, float, float]:
    """The tile box around a panorama box's outline (sampled), clipped to the tile.

    Args:
        box: ``(x0, y0, x1, y1)`` panorama pixel edges; ``x1`` may exceed ``W`` (wraps).
        tile: the tile to map into.
        shape: ``(H, W)`` of the panorama.

    Returns:
        ``(x0, y0, x1, y1)`` tile pixel edges; the whole tile if none of the box is in front.
    """
    x0, y0, x1, y1 = box
    t = np.linspace(0.0, 1.0, 33)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x0 + (x1 - x0) * t,
                         np.full_like(t, x0)])
    ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1),
                         y0 + (y1 - y0) * t])
    dirs = angles_to_vectors(*pixel_to_angles(xs - 0.5, ys - 0.5, shape))
    u, v, _ = vectors_to_tile(dirs, tile)
    front = dirs @ tile_basis(tile)[2] > 1e-6
    s = float(tile.size)
    if not front.any():
        return (0.0, 0.0, s, s)
    u, v = u[front] + 0.5, v[front] + 0.5
    return (float(np.clip(u.min(), 0, s)), float(np.clip(v.min(), 0, s)),
            float(np.clip(u.max(), 0, s)), float(np.clip(v.max(), 0, s)))
