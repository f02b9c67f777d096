"""Every tunable parameter, in one typed object.

Defaults are the design document's parameter table. Each field is read from the
environment variable ``PRODSEG_<NAME>`` (e.g. ``PRODSEG_SIMILARITY_THRESHOLD=0.7``) and
can be overridden by the matching command-line flag (``--similarity-threshold 0.7``).
An invalid value raises ``SettingsError`` naming the setting.

Over 400 lines for a reason: one declarative field per setting, about fifty of them, each
with its scope, bounds and help; split, the one declaration would be scattered.
"""

from __future__ import annotations

import difflib
import enum
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, JsonValue, ValidationError, field_validator, model_validator
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, SettingsConfigDict

from prodseg.errors import SettingsError

SAM2_SIZES = ("hiera_tiny", "hiera_small", "hiera_base_plus", "hiera_large")
DINOV2_MODELS = (
    "vit_small_patch14_dinov2",
    "vit_base_patch14_dinov2",
    "vit_large_patch14_dinov2",
    "vit_giant_patch14_dinov2",
    "vit_small_patch14_reg4_dinov2",
    "vit_base_patch14_reg4_dinov2",
    "vit_large_patch14_reg4_dinov2",
    "vit_giant_patch14_reg4_dinov2",
)
DINOV2_ALIASES = {
    "vit-s/14": "vit_small_patch14_dinov2",
    "vit-b/14": "vit_base_patch14_dinov2",
    "vit-l/14": "vit_large_patch14_dinov2",
    "vit-g/14": "vit_giant_patch14_dinov2",
}


def default_cache_dir() -> Path:
    """Where model weights live unless ``PRODSEG_MODEL_CACHE_DIR`` says otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "prodseg" / "models"


class Scope(enum.Flag):
    """Where a setting acts; declared once, on its field, with ``setting(scope, ...)``.

    Exactly one of ``JOB``, ``MACHINE`` or ``SECRET``, optionally with ``CONNECTION`` or
    ``WORKER``:

    - ``JOB``: decides what a job computes. Recorded in ``results.json``, carried to the
      workers in ``job.json``, a catalog column. Both executors act on every one of
      them alike (``prodseg.workers.plan.job_plan``).
    - ``MACHINE``: of the process and the machine it runs on (devices, caches, batch
      sizes, limits). Never recorded or carried: each process reads its own.
    - ``SECRET``: machine-local and may hold a credential (a URL with a password). Never
      recorded, carried, echoed in a message or printed in a command line.
    - ``CONNECTION``: how to reach the broker and the object store (client and worker).
    - ``WORKER``: Celery task limits, read by workers only.
    """

    JOB = enum.auto()
    MACHINE = enum.auto()
    SECRET = enum.auto()
    CONNECTION = enum.auto()
    WORKER = enum.auto()


JOB, MACHINE, SECRET = Scope.JOB, Scope.MACHINE, Scope.SECRET
CONNECTION, WORKER = Scope.CONNECTION, Scope.WORKER


def setting(scope: Scope, default: Any = PydanticUndefined, **field: Any) -> Any:
    """A ``Settings`` field with its scope declared (``pydantic.Field`` otherwise)."""
    kinds = [s for s in (JOB, MACHINE, SECRET) if s in scope]
    if len(kinds) != 1:
        raise ValueError(f"a setting is exactly one of JOB, MACHINE or SECRET, not {scope}")
    extra: dict[str, JsonValue] = {"scope": scope.value}
    return Field(default, json_schema_extra=extra, **field)


class Settings(BaseSettings):
    """prodseg's configuration; field docs double as ``--help`` text."""

    model_config = SettingsConfigDict(
        env_prefix="PRODSEG_", case_sensitive=False, extra="forbid", validate_default=True
    )

    # --- the design document's table -------------------------------------------------
    similarity_threshold: float = setting(JOB,
        0.65, ge=-1.0, le=1.0, description="minimum cosine similarity to count as a match"
    )
    sam2_points_per_side: int = setting(JOB,
        32, ge=1, le=128, description="proposal grid density (points per image side)"
    )
    sam2_pred_iou_thresh: float = setting(JOB,
        0.86, ge=0.0, le=1.0, description="minimum SAM2 predicted IoU of a proposal"
    )
    sam2_stability_score_thresh: float = setting(JOB,
        0.92, ge=0.0, le=1.0, description="minimum SAM2 stability score of a proposal"
    )
    min_mask_area_ratio: float = setting(JOB,
        0.001, ge=0.0, le=1.0, description="drop proposals smaller than this fraction of the image"
    )
    max_mask_area_ratio: float = setting(JOB,
        0.5, gt=0.0, le=1.0, description="drop proposals larger than this fraction of the image"
    )
    nms_iou_threshold: float = setting(JOB,
        0.5, ge=0.0, le=1.0, description="mask IoU above which a weaker match is a duplicate"
    )
    dinov2_model: str = setting(JOB,
        "vit_large_patch14_reg4_dinov2",
        description="DINOv2 backbone, a timm name (vit_large_patch14_reg4_dinov2: ViT-L/14 "
        "with 4 registers)",
    )
    sam2_checkpoint: str = setting(JOB,
        "hiera_large", description="SAM 2.1 size"
    )
    top_k_matches: int = setting(
        JOB, 3, ge=1, le=100, description="maximum matches per target image"
    )
    nested_containment: float = setting(JOB,
        0.8, ge=0.5, le=1.0, description="a proposal lying this much inside another "
        "(intersection over the smaller area) is the same instance: parts and the whole "
        "of one product are one match, its mask the one closest to the reference mask's "
        "size and shape",
    )
    reference_neighbours: bool = setting(JOB,
        True, description="what the reference photo shows besides the product (shelf "
        "neighbours) is not the product: a proposal at least as like one of them as like "
        "the product is no match (costs one grid of proposals on the reference photo)",
    )
    instance_similarity: float | None = setting(JOB,
        None, ge=-1.0, le=1.0, description="a further match on a photo must look this much "
        "like the photo's best match (cosine similarity of their embeddings): copies of "
        "one product look alike, while another product that resembles one side of a "
        "growing bank does not; unset: similarity_threshold; -1: keep every instance",
    )

    # --- proposals ---------------------------------------------------------------------
    proposals: Literal["grid", "guided"] = setting(JOB,
        "grid",
        description="grid: prompt SAM2 at every point of the grid; guided: only at the peaks "
        "of the reference's similarity map on the target, falling back to the grid when "
        "nothing there matches",
    )
    guided_points: int = setting(JOB,
        8, ge=1, le=256, description="guided: similarity peaks prompted per target image"
    )
    guided_negatives: int = setting(JOB,
        1, ge=0, le=16, description="guided: negative points (least similar places) per prompt"
    )
    sam2_points_per_batch: int = setting(MACHINE,
        64, ge=1, le=4096, description="SAM2 prompts decoded together (speed and memory only)"
    )

    # --- 360 degree captures ------------------------------------------------------------
    capture: Literal["auto", "spin", "unordered", "panorama"] = setting(JOB,
        "auto",
        description="spin: ordered photos around the product (views visited outward from "
        "the reference); unordered: any photos (most similar first); panorama: "
        "equirectangular 360 images; auto: panorama if every image is 2:1, spin if the "
        "files are numbered in one folder, else unordered",
    )
    panorama_tile_fov: float = setting(JOB,
        90.0, gt=10.0, lt=170.0, description="panoramas: field of view of each perspective "
        "tile proposals are made on, in degrees",
    )
    panorama_tile_overlap: float = setting(JOB,
        30.0, ge=0.0, lt=80.0, description="panoramas: overlap of neighbouring tiles, in "
        "degrees (an object smaller than about half of it is whole in some tile)",
    )
    panorama_tile_size: int = setting(JOB,
        1024, ge=64, le=4096, description="panoramas: tile side in pixels (SAM2 works at 1024)"
    )
    propagation: Literal["off", "track"] = setting(JOB,
        "off", description="spin captures: track: follow the product from the reference "
        "click through the views in order (SAM2's video predictor), keep the tracked masks "
        "that still look like the product, and match the other views as usual",
    )
    propagation_step_threshold: float | None = setting(JOB,
        None, ge=-1.0, le=1.0, description="tracking: also keep a tracked view whose mask "
        "looks this much like the previous kept view's (the track follows the product "
        "around to sides the reference does not show); unset: only views like the "
        "product's references",
    )
    bank_size: int = setting(JOB,
        1, ge=1, le=256, description="prototype bank: most product prototypes, the "
        "reference included; confident matches join it (1: match the reference alone)",
    )
    bank_add_threshold: float = setting(JOB,
        0.8, ge=-1.0, le=1.0, description="prototype bank: least score for a match to join"
    )
    bank_margin: float = setting(JOB,
        0.1, ge=0.0, le=2.0, description="prototype bank: how far a joining match must beat "
        "the image's best other proposal",
    )
    bank_top_k: int = setting(JOB,
        1, ge=1, le=256, description="prototype bank: score = mean of the k best prototype "
        "similarities",
    )
    distractor_margin: float = setting(JOB,
        0.05, ge=-2.0, le=2.0, description="with lookalikes marked: least margin of "
        "similarity to the product over similarity to the nearest lookalike",
    )

    # --- models and compute ----------------------------------------------------------
    weights: Literal["pretrained", "random"] = setting(JOB,
        "pretrained",
        description="'random' builds the same architectures with seeded random weights: "
        "smoke runs and compute benchmarks only, results are meaningless",
    )
    seed: int = setting(JOB, 0, ge=0, description="seed of the random weights")
    device: str = setting(
        MACHINE, "auto", description="auto (CUDA if present, else CPU), cpu, cuda, cuda:N"
    )
    backend: Literal["sam2-dinov2", "classic"] = setting(JOB,
        "sam2-dinov2",
        description="'classic' swaps the models for simple contour proposals and colour/texture "
        "patch features: fast and deterministic, for tests and plumbing checks",
    )
    embedding_mode: Literal["full", "crop"] = setting(JOB,
        "full",
        description="full: one DINOv2 pass per image, every proposal pooled from it; crop: "
        "each proposal cropped with context and embedded on its own",
    )
    dinov2_input_size: int = setting(JOB,
        518, ge=56, le=2048, description="DINOv2 input long side (full) or crop side (crop), px"
    )
    crop_context: float = setting(JOB,
        0.15, ge=0.0, le=2.0, description="crop mode: margin around the box, fraction of its side"
    )
    cutout_edges: Literal["hard", "feather", "matte"] = setting(JOB,
        "hard",
        description="cutout alpha at the mask's edge: hard (0 or 1), feather (a 1.5-pixel "
        "ramp across the edge), matte (closed-form matting in a band around it; slow)",
    )
    frames: int = setting(JOB,
        36, ge=2, le=1000,
        description="video captures: how many frames to take, evenly spaced over the video "
        "(a blurred one is swapped for a sharp neighbour)",
    )
    every: int = setting(JOB,
        0, ge=0, le=100000,
        description="video captures: take every k-th frame instead of --frames (0: off)",
    )
    embed_batch_size: int = setting(
        MACHINE, 16, ge=1, le=1024, description="crops per DINOv2 batch"
    )
    image_batch_size: int = setting(MACHINE,
        1, ge=1, le=64,
        description="target images whose whole-image DINOv2 passes run as one batch (full "
        "mode and guided prompting, prodseg run); worth raising on a GPU, not on a CPU",
    )
    compile_models: bool = setting(MACHINE,
        False,
        description="torch.compile SAM2's image encoder and DINOv2: faster on a GPU once the "
        "first images have paid the compile time (minutes); rarely worth it on a CPU",
    )
    model_cache_dir: Path = setting(MACHINE,
        default_factory=default_cache_dir, description="where model weights are stored"
    )

    # --- distributed mode ----------------------------------------------------------------
    broker_url: str = setting(SECRET | CONNECTION,
        "redis://localhost:6379/0",
        description="Celery broker and progress counters: redis:// or rediss:// URL (a "
        "password goes in the URL: redis://:PASSWORD@host:6379/0)",
    )
    s3_endpoint_url: str | None = setting(SECRET | CONNECTION,
        None, description="S3-compatible endpoint, e.g. http://localhost:9000 (None: AWS)"
    )
    s3_bucket: str = setting(
        MACHINE | CONNECTION, "prodseg", description="bucket holding jobs/ and uploaded inputs"
    )
    s3_region: str = setting(MACHINE | CONNECTION, "us-east-1", description="S3 region")
    outage_budget_s: int = setting(MACHINE | CONNECTION,
        180, ge=0, le=86400,
        description="how long a storage or broker outage is ridden out, backing off, before "
        "a call fails: a worker's store and progress calls, and prodseg watch (0: not at all)",
    )
    task_time_limit_s: int = setting(MACHINE | WORKER,
        1800, ge=1, le=43200, description="longest one task may run before it is stopped"
    )
    broker_visibility_timeout_s: int = setting(MACHINE | WORKER,
        3600, ge=2, le=86400,
        description="a task taken by a worker that then vanished (killed, machine lost) is "
        "delivered again after this many seconds; must exceed task_time_limit_s",
    )
    task_retries: int = setting(MACHINE | WORKER,
        6, ge=0, le=100,
        description="retries of a task whose storage or broker call failed transiently; "
        "then its target is recorded as failed (prodseg resume runs it again)",
    )
    task_retry_backoff_max_s: int = setting(MACHINE | WORKER,
        60, ge=1, le=3600, description="longest wait between two retries of a task, seconds"
    )
    lease_ttl_s: int = setting(MACHINE | WORKER,
        30, ge=3, le=3600,
        description="a running step holds a lease its worker renews every third of this; "
        "one not renewed for this long (the worker was lost) is enqueued again by another "
        "worker's check, which runs as often",
    )
    task_max_deliveries: int = setting(MACHINE | WORKER,
        3, ge=1, le=100,
        description="deliveries of one target that never finish (its worker dies: out of "
        "memory, killed) before it is recorded as failed instead of tried again",
    )

    # --- inputs ----------------------------------------------------------------------
    max_image_pixels: int = setting(MACHINE,
        100_000_000, ge=1, description="refuse images with more pixels (decompression bombs)"
    )
    max_image_bytes: int = setting(
        MACHINE, 200_000_000, ge=1, description="refuse image files larger than this many "
        "bytes (checked before reading; only regular files are read)",
    )

    @field_validator("sam2_checkpoint")
    @classmethod
    def _known_sam2(cls, value: str) -> str:
        name = value.strip().lower().replace("sam2.1_", "").replace("b+", "base_plus")
        if name not in SAM2_SIZES:
            choices = ", ".join(SAM2_SIZES)
            raise ValueError(f"unknown SAM 2.1 size {value!r}; choose one of {choices}")
        return name

    @field_validator("dinov2_model")
    @classmethod
    def _known_dinov2(cls, value: str) -> str:
        name = value.strip()
        name = DINOV2_ALIASES.get(name.lower(), name)
        name = name.removesuffix(".lvd142m")
        if name not in DINOV2_MODELS:
            raise ValueError(
                f"unknown DINOv2 model {value!r}; choose one of {', '.join(DINOV2_MODELS)}"
            )
        return name

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        v = value.strip().lower()
        if v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"unknown device {value!r}; use auto, cpu, cuda or cuda:N")

    @field_validator("broker_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://")):
            raise ValueError("expected a redis:// or rediss:// URL")
        return value

    @model_validator(mode="after")
    def _visibility_after_time_limit(self) -> Settings:
        if self.broker_visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError(
                f"broker_visibility_timeout_s ({self.broker_visibility_timeout_s}) must exceed "
                f"task_time_limit_s ({self.task_time_limit_s}), or a running task would be "
                "handed to a second worker"
            )
        return self

    @model_validator(mode="after")
    def _area_range(self) -> Settings:
        if self.min_mask_area_ratio >= self.max_mask_area_ratio:
            raise ValueError(
                f"min_mask_area_ratio ({self.min_mask_area_ratio}) must be below "
                f"max_mask_area_ratio ({self.max_mask_area_ratio})"
            )
        return self


def scope_of(name: str) -> Scope:
    """The declared scope of setting ``name``."""
    extra = Settings.model_fields[name].json_schema_extra
    assert isinstance(extra, dict), name
    return Scope(extra["scope"])


def settings_with(scope: Scope) -> frozenset[str]:
    """Names of the settings whose scope includes every flag of ``scope``."""
    return frozenset(name for name in Settings.model_fields if scope in scope_of(name))


def recorded(settings: Settings) -> dict[str, Any]:
    """The job settings as JSON values: what ``results.json`` and ``job.json`` carry.

    Machine and secret settings are left out: they describe one process, and a secret
    may hold a password.
    """
    return settings.model_dump(mode="json", include=set(settings_with(JOB)))


def setting_flag(name: str) -> str:
    """The flag of a setting: ``similarity_threshold`` -> ``--similarity-threshold``."""
    return "--" + name.replace("_", "-")


NOT_SETTINGS = frozenset(
    {"PRODSEG_ENV_FILE", "PRODSEG_TEST_ARTIFACTS", "PRODSEG_WORKER_HEALTH_FILE",
     "PRODSEG_SECRETS_DIR", "PRODSEG_NO_HF_HUB"}
)
"""``PRODSEG_*`` variables that are not settings: docker/submit.sh's env file, where the
tests leave their artifacts, the worker health check's process list, the folder of
settings kept in files (``load_settings``), and Meta's URLs only for the weights."""
_warned: set[str] = set()


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for ``PRODSEG_*`` variables that name no setting, with "did you mean"."""
    known = {f"PRODSEG_{name.upper()}" for name in Settings.model_fields} | NOT_SETTINGS
    lines = []
    for variable in sorted(v for v in environ if v.upper().startswith("PRODSEG_")):
        if variable.upper() in known:
            continue
        close = difflib.get_close_matches(variable.upper(), sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{variable} is not a prodseg setting and is ignored{hint}")
    return lines


def warn_unknown_variables() -> None:
    """Say once per process, on stderr, which ``PRODSEG_*`` variables are ignored."""
    for line in unknown_variables(os.environ):
        if line not in _warned:
            _warned.add(line)
            print(f"prodseg: warning: {line}", file=sys.stderr)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` (e.g. CLI flags) on top.

    Overrides whose value is None are ignored, so unset CLI flags keep the environment's
    value. Under them come ``PRODSEG_*`` variables, then files ``prodseg_<name>`` in the
    folder ``PRODSEG_SECRETS_DIR`` names, then the defaults.

    Raises:
        SettingsError: a value is invalid; the message names the setting, its environment
            variable and its flag.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    warn_unknown_variables()
    # A folder of files named prodseg_<setting> (compose's /run/secrets): a password kept
    # there is in neither the environment nor a command line (docker inspect shows both).
    secrets = os.environ.get("PRODSEG_SECRETS_DIR")
    try:
        if secrets:
            return Settings(_secrets_dir=secrets, **given)  # type: ignore[call-arg]
        return Settings(**given)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            if loc:
                name = loc[0]
                where = f"{name} (PRODSEG_{name.upper()} / {setting_flag(name)})"
            else:
                where = "settings"
            value = err.get("input")
            hidden = isinstance(value, dict) or value is None or (
                bool(loc) and loc[0] in SECRET_SETTINGS)
            shown = "" if hidden else f" = {value!r}"
            lines.append(f"invalid setting {where}{shown}: {err['msg']}")
        raise SettingsError("; ".join(lines)) from None


JOB_SETTINGS = settings_with(JOB)
MACHINE_SETTINGS = settings_with(MACHINE) | settings_with(SECRET)
"""Settings never carried by a job from elsewhere: machine and secret ones."""
SECRET_SETTINGS = settings_with(SECRET)
