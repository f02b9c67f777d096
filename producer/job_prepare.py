"""A distributed job prepared: checked once, its inputs placed in the store, its manifest
written; enqueueing it is the client's."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from prodseg.job_spec import ViewPrompts, build_job_spec
from prodseg.producer.inputs import (
    expand_inputs,
    input_identity,
    is_s3,
    place_input,
    place_video,
    read_input_bytes,
    video_job_inputs,
)
from prodseg.prompts import Prompt
from prodseg.settings import Settings, recorded
from prodseg.storage.base import ObjectStore
from prodseg.storage.images import decode_image
from prodseg.storage.manifest import JobManifest, new_job_id, validate_job_id


def prepare_job(
    store: ObjectStore,
    client_settings: Settings,
    images: Sequence[str | os.PathLike[str]],
    reference: str | os.PathLike[str],
    prompt: Prompt | None,
    on_upload: Callable[[str], None] | None,
    job: str | None,
    settings: Settings,
    distractor_points: Sequence[tuple[float, float]],
    views: ViewPrompts | None,
) -> str:
    """Check a job, upload its inputs and write its manifest (``JobClient.prepare``).

    Args:
        store: the shared store.
        client_settings: the client's settings: how inputs are listed and read.
        images, reference, prompt, on_upload, job, distractor_points, views: as
            ``JobClient.submit`` takes them.
        settings: this job's settings.

    Returns:
        The job id.
    """
    limit = settings.max_image_pixels
    sources = expand_inputs(images, client_settings)
    video = video_job_inputs(sources, str(reference), settings, client_settings)
    if video is not None:  # its frames stand for it; it is uploaded once, below
        sources, reference = video.images, video.reference
    spec = build_job_spec(
        sources, str(reference), prompt,
        identity=input_identity,
        decode=video.read if video is not None else (
            lambda source: decode_image(read_input_bytes(source, client_settings),
                                        source, limit)),
        distractors=distractor_points, views=views,
        exists=None if video is not None else (
            lambda source: is_s3(source) or Path(source).is_file()))
    job = validate_job_id(job) if job is not None else new_job_id()
    named = list(zip(spec.ids, [spec.reference, *spec.targets], strict=True))
    if video is not None:
        entries = place_video(store, job, video.capture, named, settings)
        if on_upload is not None:
            on_upload(video.capture.source)
    else:
        entries = []
        for image_id, source in named:
            entries.append(place_input(store, job, image_id, source, settings))
            if on_upload is not None:
                on_upload(source)
    manifest = JobManifest(
        job=job, reference=entries[0], images=entries[1:],
        prompt=None if spec.prompt is None else spec.prompt.to_json(),
        settings=recorded(settings), distractors=[list(p) for p in spec.distractors],
        views=spec.views.to_json() if not spec.views.empty else {},
        video=video.capture.to_json() if video is not None else {},
    )
    manifest.save(store)
    return job
