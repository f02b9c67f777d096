"""DINOv2 patch tokens as Meta computes them, at every grid, for both families.

A seeded ViT-S/14 checkpoint in Meta's published format loads through prodseg's pretrained
path (the real loader, from a cache directory); its patch tokens are compared with an
independent computation of Meta's ViT (``tests/support/dinov2_reference``) at the 37×37
grid of training and at grids that need the position embedding resized.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prodseg.workers.embed.dinov2 import DinoV2Backbone
from prodseg.workers.models.builders import build_dinov2_model
from prodseg.workers.models.dinov2_grid import PLAIN, REGISTERS, GridResize, resize_grid
from tests.support import dinov2_reference as ref
from tests.support.dinov2_parity import (
    CPU,
    FAMILIES,
    GRIDS,
    grid_images,
    with_timm_resize,
    write_checkpoint,
)

TOLERANCE = 1e-4


@pytest.mark.parametrize("how", [PLAIN, REGISTERS], ids=["plain", "reg4"])
@pytest.mark.parametrize("grid", [(37, 37), (37, 28), (28, 37), (16, 16), (40, 30), (74, 52)])
def test_grid_resize_is_the_reference_bicubic(how: GridResize, grid: tuple[int, int]) -> None:
    """The resize of each family against explicit float64 interpolation matrices of
    PyTorch's two bicubic kernels (shrinking and enlarging)."""
    pos = torch.randn(1, 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    h, w = grid
    cls = torch.zeros(1, 1, 8)
    want = ref.resized_positions(torch.cat([cls, pos], 1), h, w, how is REGISTERS)[:, 1:]
    got = resize_grid(pos, grid, how)
    assert got.shape == (1, h * w, 8)
    torch.testing.assert_close(got, want, rtol=0, atol=TOLERANCE)


def test_the_two_kernels_differ() -> None:
    """The plain and the register resize are not the same (else the test above proves
    nothing about which family gets which)."""
    pos = torch.randn(1, 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    diff = (resize_grid(pos, (37, 28), PLAIN) - resize_grid(pos, (37, 28), REGISTERS)).abs()
    assert diff.max() > 0.1


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """``(family, prodseg's model loaded from a seeded checkpoint, {grid: Meta's tokens}``
    (the reference's, computed once)."""
    name = FAMILIES[request.param]
    cache = tmp_path_factory.mktemp(request.param)
    sd = write_checkpoint(cache, name, seed=0)
    model = build_dinov2_model(name, "pretrained", Path(cache), "cpu", 0)
    want = {grid: ref.patch_tokens(sd, grid_images(grid)) for grid in GRIDS}
    return request.param, model, want


@pytest.mark.slow
def test_patch_tokens_equal_metas_at_every_grid(family: tuple) -> None:
    kind, model, want = family
    assert model.grid_resize == (REGISTERS if kind == "reg4" else PLAIN)
    backbone = DinoV2Backbone(model, CPU, FAMILIES[kind])
    worst = {}
    for grid in GRIDS:
        got = backbone.patch_tokens(grid_images(grid))
        assert got.shape == want[grid].shape == (1, *grid, 384)
        assert np.abs(want[grid]).max() > 1.0  # tokens of real magnitude
        worst[grid] = float(np.abs(got - want[grid]).max())
    assert max(worst.values()) <= TOLERANCE, f"{kind}: max |diff| per grid {worst}"


@pytest.mark.slow
def test_timm_resize_is_metas_for_registers_only(family: tuple) -> None:
    """The cause, kept visible: timm's own resize (by size, antialiased) is Meta's for the
    register models and not for the plain ones."""
    kind, model, want = family
    stock = DinoV2Backbone(with_timm_resize(model), CPU, FAMILIES[kind])
    diff = np.abs(stock.patch_tokens(grid_images((16, 16))) - want[16, 16]).max()
    if kind == "reg4":
        assert diff <= TOLERANCE
    else:
        assert diff > 100 * TOLERANCE
    assert "_pos_embed" in vars(model)  # the copy was changed, not the cached model
