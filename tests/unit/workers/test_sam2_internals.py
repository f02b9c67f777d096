"""The rf-sam-2 internals prodseg reads, checked on the installed package.

``workers/segment/sam2_proposals.py`` decodes prompts on the features that
``SAM2ImagePredictor.set_image`` keeps (``_features``, ``_orig_hw``, ``_transforms``), and
``workers/segment/sam2_decoder.py`` re-implements the mask decoder from its submodules. These
are not public API, so pyproject bounds rf-sam-2 (``<1.1``); this test is what a new release
must pass before the bound moves. Each failure names the attribute and the module that
reads it.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sam2")  # the [worker] extra; the test environment always has it

PROPOSALS = "workers/segment/sam2_proposals.py"
DECODER = "workers/segment/sam2_decoder.py"

PREDICTOR_STATE = (("_orig_hw", PROPOSALS), ("_transforms", PROPOSALS),
                   ("_features", PROPOSALS))
"""What ``SAM2ImagePredictor.set_image`` leaves on the predictor."""
FEATURE_KEYS = ("image_embed", "high_res_feats")
MODEL_PATHS = (
    "sam_prompt_encoder", "sam_prompt_encoder.get_dense_pe", "sam_mask_decoder",
    *(f"sam_mask_decoder.{a}" for a in (
        "use_high_res_features", "pred_obj_scores", "obj_score_token", "iou_token",
        "mask_tokens", "num_mask_tokens", "transformer", "output_upscaling",
        "output_hypernetworks_mlps", "iou_prediction_head")),
    *(f"sam_mask_decoder.transformer.{a}" for a in (
        "layers", "final_attn_token_to_image", "norm_final_attn")),
    *(f"sam_mask_decoder.transformer.layers.0.{a}" for a in (
        "self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token", "mlp",
        "norm1", "norm2", "norm3", "norm4", "skip_first_layer_pe")),
    *(f"sam_mask_decoder.transformer.final_attn_token_to_image.{a}" for a in (
        "q_proj", "k_proj", "v_proj", "out_proj", "num_heads", "internal_dim", "kv_in_dim",
        "embedding_dim")),
)
"""Attribute paths of a SAM2Base model that the restructured decoder reads."""
SIGNATURES = {
    "sam2.modeling.sam.mask_decoder.MaskDecoder.forward": (
        "image_embeddings", "image_pe", "sparse_prompt_embeddings",
        "dense_prompt_embeddings", "multimask_output", "repeat_image", "high_res_features"),
    "sam2.modeling.sam.prompt_encoder.PromptEncoder.forward": ("points", "boxes", "masks"),
    "sam2.utils.transforms.SAM2Transforms.transform_coords": ("coords", "normalize",
                                                              "orig_hw"),
    "sam2.sam2_image_predictor.SAM2ImagePredictor.set_image": ("image",),
}
"""Functions called with keywords, and the keywords prodseg passes."""


def _changed(what: str) -> str:
    return (f"rf-sam-2 {version('rf-sam-2')}: {what}. prodseg reads SAM2 internals there; "
            "adapt those modules before raising the rf-sam-2 bound in pyproject.toml")


def _resolve(dotted: str) -> Any:
    """``package.module.Class.attribute``: the longest importable prefix, then getattr."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted", sorted(SIGNATURES))
def test_the_functions_prodseg_calls_take_its_keywords(dotted: str) -> None:
    try:
        function = _resolve(dotted)
    except (ImportError, AttributeError):
        pytest.fail(_changed(f"{dotted} is gone"))
    taken = inspect.signature(function).parameters
    for keyword in SIGNATURES[dotted]:
        assert keyword in taken, _changed(f"{dotted} no longer takes {keyword}=")


def test_set_image_still_keeps_the_state_prodseg_reads() -> None:
    """From the source, so that it fails without building a model."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    source = inspect.getsource(SAM2ImagePredictor)
    for attribute, reader in PREDICTOR_STATE:
        assert f"self.{attribute}" in source, _changed(
            f"SAM2ImagePredictor.{attribute} (read by {reader}) is gone")
    for key in FEATURE_KEYS:
        assert f'"{key}"' in source or f"'{key}'" in source, _changed(
            f"SAM2ImagePredictor._features[{key!r}] (read by {PROPOSALS}) is gone")


def _attribute(root: Any, path: str) -> Any:
    obj = root
    for name in path.split("."):
        obj = obj[int(name)] if name.isdigit() else getattr(obj, name)
    return obj


@pytest.mark.slow
def test_a_real_predictor_and_model_have_every_attribute_prodseg_reads() -> None:
    import torch
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from prodseg.workers.models.builders import build_sam2_model

    model = build_sam2_model("hiera_tiny", "random", Path("/nonexistent"), "cpu", 0)
    for path in MODEL_PATHS:
        try:
            _attribute(model, path)
        except (AttributeError, IndexError, TypeError):
            pytest.fail(_changed(f"SAM2Base.{path} (read by {DECODER}) is gone"))
    predictor = SAM2ImagePredictor(model)
    with torch.inference_mode():
        predictor.set_image(np.zeros((48, 64, 3), np.uint8))
    for attribute, reader in PREDICTOR_STATE:
        assert hasattr(predictor, attribute), _changed(
            f"SAM2ImagePredictor.{attribute} (read by {reader}) is gone")
    assert tuple(predictor._orig_hw[-1]) == (48, 64), _changed(
        f"SAM2ImagePredictor._orig_hw[-1] (read by {PROPOSALS}) is no longer (H, W)")
    for key in FEATURE_KEYS:
        assert key in predictor._features, _changed(
            f"SAM2ImagePredictor._features[{key!r}] (read by {PROPOSALS}) is gone")
    assert len(predictor._features["high_res_feats"]) == 2, _changed(
        "SAM2ImagePredictor._features['high_res_feats'] is no longer two levels")
    assert hasattr(predictor._transforms, "transform_coords"), _changed(
        f"SAM2ImagePredictor._transforms.transform_coords (read by {PROPOSALS}) is gone")


def test_the_bound_covers_the_installed_release() -> None:
    """The installed rf-sam-2 is the one these checks describe: within pyproject's bound."""
    import tomllib

    from tests.support.imports import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (spec,) = [d for d in project["optional-dependencies"]["worker"] if d.startswith("rf-sam-2")]
    assert "<" in spec, f"rf-sam-2 has no upper bound in pyproject.toml: {spec}"
    from packaging.specifiers import SpecifierSet

    assert version("rf-sam-2") in SpecifierSet(spec.removeprefix("rf-sam-2"))
