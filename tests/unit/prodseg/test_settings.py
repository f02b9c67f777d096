"""Settings: the design document's defaults, environment variables, flags, clear errors."""

from __future__ import annotations

import pytest

from prodseg.errors import SettingsError
from prodseg.settings import Settings, load_settings, setting_flag
from tests.support.outcomes import record


def test_defaults_are_the_design_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"PRODSEG_{name.upper()}", raising=False)
    s = load_settings()
    assert s.similarity_threshold == 0.65
    assert s.sam2_points_per_side == 32
    assert s.sam2_pred_iou_thresh == 0.86
    assert s.sam2_stability_score_thresh == 0.92
    assert s.min_mask_area_ratio == 0.001
    assert s.max_mask_area_ratio == 0.5
    assert s.nms_iou_threshold == 0.5
    assert s.dinov2_model == "vit_large_patch14_reg4_dinov2"
    assert s.sam2_checkpoint == "hiera_large"
    assert s.top_k_matches == 3
    assert s.weights == "pretrained"


def test_environment_then_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODSEG_SAM2_CHECKPOINT", "hiera_tiny")
    monkeypatch.setenv("PRODSEG_DINOV2_MODEL", "vit_small_patch14_dinov2")
    monkeypatch.setenv("PRODSEG_SIMILARITY_THRESHOLD", "0.7")
    monkeypatch.setenv("PRODSEG_WEIGHTS", "random")
    s = load_settings()
    assert (s.sam2_checkpoint, s.dinov2_model, s.similarity_threshold, s.weights) == (
        "hiera_tiny", "vit_small_patch14_dinov2", 0.7, "random")
    s = load_settings(similarity_threshold="0.8", top_k_matches=None)
    assert s.similarity_threshold == 0.8
    assert s.top_k_matches == 3


def test_aliases_are_normalised() -> None:
    s = load_settings(dinov2_model="ViT-L/14", sam2_checkpoint="sam2.1_hiera_b+")
    assert s.dinov2_model == "vit_large_patch14_dinov2"
    assert s.sam2_checkpoint == "hiera_base_plus"
    assert load_settings(dinov2_model="vit_small_patch14_reg4_dinov2.lvd142m").dinov2_model == (
        "vit_small_patch14_reg4_dinov2")


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("similarity_threshold", "high", "PRODSEG_SIMILARITY_THRESHOLD / --similarity-threshold"),
        ("similarity_threshold", "1.5", "less than or equal to 1"),
        ("sam2_points_per_side", "0", "--sam2-points-per-side"),
        ("sam2_checkpoint", "hiera_huge", "unknown SAM 2.1 size"),
        ("dinov2_model", "resnet50", "unknown DINOv2 model"),
        ("weights", "imagenet", "--weights"),
        ("device", "tpu", "unknown device"),
        ("top_k_matches", "-1", "--top-k-matches"),
    ],
)
def test_invalid_values_name_the_setting(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**{name: value})
    assert words in str(err.value)
    if value in ("1.5", "hiera_huge"):
        record("bad input", f"setting out of range: {name}={value}", str(err.value))


def test_invalid_environment_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODSEG_NMS_IOU_THRESHOLD", "lots")
    with pytest.raises(SettingsError, match="PRODSEG_NMS_IOU_THRESHOLD"):
        load_settings()


def test_area_ratios_must_be_ordered() -> None:
    with pytest.raises(SettingsError, match="min_mask_area_ratio"):
        load_settings(min_mask_area_ratio=0.6, max_mask_area_ratio=0.5)


def test_flag_names() -> None:
    assert setting_flag("similarity_threshold") == "--similarity-threshold"


def test_settings_kept_in_files_under_prodseg_secrets_dir(tmp_path, monkeypatch) -> None:
    """Compose mounts the broker URL as a file; a variable or a flag still wins over it."""
    from prodseg.settings import load_settings

    (tmp_path / "prodseg_broker_url").write_text("redis://:pw@redis:6379/0\n")
    monkeypatch.delenv("PRODSEG_BROKER_URL", raising=False)
    monkeypatch.setenv("PRODSEG_SECRETS_DIR", str(tmp_path))
    assert load_settings().broker_url == "redis://:pw@redis:6379/0"
    assert load_settings(broker_url="redis://other:6379/1").broker_url == "redis://other:6379/1"
    monkeypatch.setenv("PRODSEG_BROKER_URL", "redis://env:6379/2")
    assert load_settings().broker_url == "redis://env:6379/2"
