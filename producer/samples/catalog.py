"""A rendered store catalog: one spin set per product, off-centre, some beside a lookalike.

Each product is a carton turning on its own shelf (``samples.scene``), photographed with
the camera aimed past it by up to ``max_offset`` of the frame, and every third one has a
lookalike in another flavour standing beside it (``samples.twins.standing_beside``). The
photos go to ``photos/<product>/``, one folder per product (what ``prodseg catalog
prepare`` reads), the true masks to ``truth/<product>/`` and an index to ``truth.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from prodseg.jsonio import dump_bytes
from prodseg.producer.samples.scene import render_spin_set
from prodseg.producer.samples.twins import standing_beside


def write_sample_catalog(out_dir: Path, products: int, views: int = 8,
                         size: tuple[int, int] = (512, 384), seed: int = 0,
                         max_offset: float = 0.2, lookalike_every: int = 3) -> Path:
    """Render ``products`` spin sets into ``out_dir``.

    Args:
        out_dir: the folder to write into; created if missing.
        products: how many products (``sku-0000`` ...).
        views: views per product, evenly around it.
        size: ``(width, height)`` of every photo.
        seed: seeds the offsets and each product's scene (``seed * 100003 + k``).
        max_offset: the product's centre lies up to this fraction of the frame's width
            and height off the centre.
        lookalike_every: every n-th product (the first among them) has a lookalike
            beside it; 0 for none.

    Returns:
        The path of ``truth.json``: per product, its folder, whether a lookalike stands
        beside it, its offset, and per view the photo and the true mask (relative paths).
    """
    rng = np.random.default_rng(seed)
    width, height = size
    index: dict[str, object] = {}
    for k in range(products):
        pid = f"sku-{k:04d}"
        offset = (float(rng.uniform(-max_offset, max_offset)),
                  float(rng.uniform(-max_offset, max_offset)))
        spin = render_spin_set(views, height, width, 0, seed * 100003 + k, offset)
        images = [v.image for v in spin.views]
        masks = [v.mask for v in spin.views]
        lookalike = bool(lookalike_every) and k % lookalike_every == 0
        if lookalike:
            images, masks = standing_beside(images, masks)
        (out_dir / "photos" / pid).mkdir(parents=True, exist_ok=True)
        (out_dir / "truth" / pid).mkdir(parents=True, exist_ok=True)
        entries = []
        for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
            photo, truth = f"photos/{pid}/view_{i:03d}.jpg", f"truth/{pid}/view_{i:03d}.png"
            Image.fromarray(image).save(out_dir / photo, quality=92)
            Image.fromarray(mask.astype(np.uint8) * 255).save(out_dir / truth)
            entries.append({"image": photo, "mask": truth})
        index[pid] = {"folder": f"photos/{pid}", "lookalike": lookalike,
                      "offset": list(offset), "views": entries}
    path = out_dir / "truth.json"
    path.write_bytes(dump_bytes({"products": index}))
    return path
