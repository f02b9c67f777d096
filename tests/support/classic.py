"""The pipeline on the classic stand-ins: one builder for every logic test."""

from __future__ import annotations

from typing import Any

from prodseg.settings import load_settings
from prodseg.workers.classic.backbone import ColourTextureBackbone
from prodseg.workers.classic.segmenter import ContourSegmenter
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.segment.protocol import Segmenter


def classic_pipeline(segmenter: Segmenter | None = None,
                     **settings: Any) -> ProductSegmentationPipeline:
    """``backend=classic`` with ``settings``: contour proposals (or ``segmenter``) and
    colour/texture FFA embeddings in the settings' embedding mode and input size."""
    s = load_settings(backend="classic", **settings)
    embedder = FFAEmbedder(ColourTextureBackbone(), mode=s.embedding_mode,
                           input_size=s.dinov2_input_size, crop_context=s.crop_context)
    return ProductSegmentationPipeline(s, segmenter or ContourSegmenter(), embedder)
