"""From settings to working backends: which segmenter, which embedder, on which device."""

from __future__ import annotations

from prodseg.settings import Settings, recorded
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.embed.protocol import PatchBackbone
from prodseg.workers.segment.protocol import Segmenter


def build_backends(settings: Settings) -> tuple[Segmenter, FFAEmbedder, dict[str, object]]:
    """The segmenter and FFA embedder the settings ask for, plus a description of them.

    ``backend="sam2-dinov2"`` builds SAM 2.1 and DINOv2 (pretrained from the cache, or
    seeded-random with ``weights="random"``); ``backend="classic"`` builds the simple
    deterministic contour segmenter and colour/texture backbone.

    Raises:
        WeightsError: pretrained weights are missing (the message names the command).
    """
    s = settings
    if s.backend == "classic":
        from prodseg.workers.classic.backbone import ColourTextureBackbone
        from prodseg.workers.classic.segmenter import ContourSegmenter

        backbone: PatchBackbone = ColourTextureBackbone()
        segmenter: Segmenter = ContourSegmenter()
        described: dict[str, object] = {
            "backend": "classic",
            "segmenter": "contour proposals (classic)",
            "embedder": f"{backbone.name} patch features (classic)",
            "device": "cpu",
        }
    else:
        from prodseg.workers.embed.dinov2 import DinoV2Backbone
        from prodseg.workers.models.builders import (
            build_dinov2_model,
            build_sam2_model,
            resolve_device,
        )
        from prodseg.workers.segment.sam2_candidates import ProposalParams
        from prodseg.workers.segment.sam2_image import Sam2Segmenter

        device = resolve_device(s.device)
        sam = build_sam2_model(s.sam2_checkpoint, s.weights, s.model_cache_dir, str(device),
                               s.seed, s.compile_models)
        params = ProposalParams(
            points_per_side=s.sam2_points_per_side,
            pred_iou_thresh=s.sam2_pred_iou_thresh,
            stability_score_thresh=s.sam2_stability_score_thresh,
            points_per_batch=s.sam2_points_per_batch,
            min_area_ratio=s.min_mask_area_ratio,
            max_area_ratio=s.max_mask_area_ratio,
        )
        segmenter = Sam2Segmenter(sam, params, f"sam2.1_{s.sam2_checkpoint}")
        dino = build_dinov2_model(s.dinov2_model, s.weights, s.model_cache_dir, str(device),
                                  s.seed, s.compile_models)
        backbone = DinoV2Backbone(dino, device, s.dinov2_model)
        described = {
            "backend": "sam2-dinov2",
            "segmenter": f"sam2.1_{s.sam2_checkpoint}",
            "embedder": s.dinov2_model,
            "device": str(device),
        }
    if s.capture in ("auto", "panorama"):
        # Panoramas (is_panorama_size) are proposed on perspective tiles; other images
        # pass straight through.
        from prodseg.workers.ops.panorama import tile_layout
        from prodseg.workers.segment.panorama import PanoramaSegmenter

        segmenter = PanoramaSegmenter(segmenter, tile_layout(
            s.panorama_tile_fov, s.panorama_tile_overlap, s.panorama_tile_size))
    embedder = FFAEmbedder(
        backbone,
        mode=s.embedding_mode,
        input_size=s.dinov2_input_size,
        crop_context=s.crop_context,
        batch_size=s.embed_batch_size,
    )
    return segmenter, embedder, described


def describe_run(
    settings: Settings,
    models: dict[str, object],
    segmenter: object,
    embedder: object,
) -> dict[str, object]:
    """What produced a job's results, for ``results.json``: models, weights, settings.

    A run on random weights carries a ``warning`` that every output repeats.
    """
    from prodseg.workers.models.weights import RANDOM_WEIGHTS_WARNING

    meta: dict[str, object] = {
        "models": models or {"segmenter": type(segmenter).__name__,
                             "embedder": type(embedder).__name__},
        "weights": settings.weights if models.get("backend") != "classic" else "none",
        "settings": recorded(settings),
    }
    if models.get("backend") == "sam2-dinov2" and settings.weights == "random":
        meta["warning"] = RANDOM_WEIGHTS_WARNING
    return meta
