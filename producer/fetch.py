"""A finished job downloaded from the store into the layout of ``prodseg run``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prodseg.errors import InputError
from prodseg.storage.base import ObjectStore
from prodseg.storage.exports.coco import relocated_coco
from prodseg.storage.layout import COCO, RESULTS
from prodseg.storage.manifest import is_output_key, job_layout
from prodseg.storage.output_dir import OutputDir


def fetch_outputs(store: ObjectStore, job: str, output_dir: Path,
                  on_file: Callable[[str], None] | None = None,
                  force: bool = False) -> list[Path]:
    """Download a job's outputs from ``store`` into ``output_dir``, ``results.json`` last.

    The directory is held by the rule of ``storage.output_dir`` (locked, earlier outputs
    removed first, nothing through links that leave it). The caller checks that the job
    is done.

    Args:
        store: the shared store.
        job: the job id.
        output_dir: where to write.
        on_file: called with each relative key written (progress).
        force: write into a directory that holds other files too.

    Returns:
        The files written.

    Raises:
        InputError: the output directory, or a file in it, cannot be written.
    """
    layout = job_layout(job)
    relative_keys = [r for r in map(layout.relative, store.list(layout.prefix))
                     if is_output_key(r)]
    # results.json last: its presence means the directory is complete.
    relative_keys.sort(key=lambda r: r == RESULTS)
    written = []
    with OutputDir(output_dir, force=force) as out:
        for relative in relative_keys:
            data = store.get(layout.key(relative))
            if relative == COCO:  # the photos' paths, relative to the copy
                data = relocated_coco(data, out.path)
            try:
                out.store.put(relative, data)
            except OSError as error:  # e.g. a file where a folder of the layout goes
                raise InputError(f"{out.path / relative}: cannot be written "
                                 f"({error.strerror or error})") from None
            written.append(out.path / relative)
            if on_file is not None:
                on_file(relative)
    return written
