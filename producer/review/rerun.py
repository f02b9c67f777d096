"""A reviewed product submitted again, with its corrections, as a new job of the catalog.

The corrections are what reviewers did on the product's current job (``corrections``):

- a view with clicks on the product becomes a reference: its prompt is segmented and
  joins the prototype bank as a fixed reference;
- a rejected view ("not the product here") is forced to no match;
- clicks on lookalikes, on any view, are scored against.

The new job reads the photos the current job stored (nothing is uploaded again, and the
reviewer needs no local copies), keeps that job's settings and earlier corrections, and
is recorded as the product's newest run: ``<catalog>-<product>-r<N>``. The earlier job
and its results stay. The job's own view prompts (``workers.plan.view_prompts``) go with
it.
"""

from __future__ import annotations

from dataclasses import dataclass

from prodseg.errors import InputError
from prodseg.job_spec import ViewPrompts
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.products import product_job
from prodseg.producer.catalog.reviews import REJECT, Point, ProductReview, ReviewBook, now
from prodseg.prompts import Prompt
from prodseg.settings import load_settings
from prodseg.storage.manifest import InputImage, JobManifest


@dataclass(frozen=True)
class Corrections:
    """What a re-run changes, by view (image ids of the job reviewed).

    Attributes:
        references: views that become references, with the prompt clicked on each.
        no_match: views forced to no match.
        lookalikes: clicks on lookalikes, per view.
    """

    references: tuple[tuple[str, Prompt], ...] = ()
    no_match: tuple[str, ...] = ()
    lookalikes: tuple[tuple[str, tuple[Point, ...]], ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to change."""
        return not (self.references or self.no_match or self.lookalikes)


def corrections(review: ProductReview, job: str) -> Corrections:
    """The corrections reviewers made on ``job`` (pure; views in id order)."""
    views = {k: v for k, v in sorted(review.views.items()) if v.job == job}
    return Corrections(
        references=tuple((k, Prompt(v.points, (1,) * len(v.points)))
                         for k, v in views.items() if v.points),
        no_match=tuple(k for k, v in views.items() if v.decision == REJECT and not v.points),
        lookalikes=tuple((k, v.lookalikes) for k, v in views.items() if v.lookalikes),
    )


def rerun_job_id(catalog: str, product: str, review: ProductReview) -> str:
    """``<catalog>-<product>-r<N>``, N counting the product's re-runs from 1."""
    return f"{product_job(catalog, product)}-r{len(review.runs) + 1}"


def stored_location(client: CatalogClient, image: InputImage) -> str:
    """Where a job's image can be read by a new job: its ``s3://`` URL in the job store."""
    if image.location.startswith("s3://"):
        return image.location
    bucket = getattr(client.store, "bucket", None)
    if bucket is None:
        raise InputError("re-running needs the catalog's S3 store (PRODSEG_S3_BUCKET)")
    return f"s3://{bucket}/{image.location}"


def rerun_product(client: CatalogClient, catalog: str, product: str, by: str,
                  book: ReviewBook | None = None) -> str:
    """Submit ``product`` again with the corrections made on its current job.

    Returns:
        The new job's id (recorded as the product's newest run).

    Raises:
        InputError: the product is unknown, its current job is not done, or nothing was
            corrected on it.
    """
    book = book or ReviewBook(client.store, catalog)
    current = client.current_jobs(catalog)
    if product not in current:
        raise InputError(f"no product {product!r} in catalog {catalog}")
    job = current[product]
    review = book.get(product)
    fixes = corrections(review, job)
    if fixes.empty:
        raise InputError(f"{product}: nothing corrected on job {job} (click the product on a "
                         "view, reject a view or mark a lookalike first)")
    manifest = JobManifest.load(client.store, job)
    status = client.jobs.status(job)
    if status.state != "done":
        raise InputError(f"{product}: job {job} is {status.state}; re-run a finished job")
    sources = {i.image_id: stored_location(client, i) for i in manifest.images}
    reference = stored_location(client, manifest.reference)
    settings = load_settings(**{**client.jobs.settings.model_dump(), **manifest.settings})
    new_job = rerun_job_id(catalog, product, review)
    client.jobs.submit(
        list(sources.values()), reference,
        None if manifest.prompt is None else Prompt.from_json(manifest.prompt),  # proposed
        job=new_job,
        settings=settings,
        distractor_points=[(float(x), float(y)) for x, y in manifest.distractors]
        + [p for view, points in fixes.lookalikes if view == manifest.reference.image_id
           for p in points],
        views=merged_views(ViewPrompts.from_json(manifest.views), fixes,
                           manifest.reference.image_id),
    )
    from prodseg.producer.catalog.reviews import with_run

    book.update(product, lambda r: with_run(r, new_job, by, now()))
    return new_job


def merged_views(earlier: ViewPrompts, fixes: Corrections, reference: str) -> ViewPrompts:
    """The view prompts of a re-run: the job's own, then the reviewers' corrections (a view
    clicked again gets the new clicks; a view rejected now is no reference any more).

    The keys are image ids: a re-run reads the same stored photos, so its views get the
    same ids.
    """
    rejected = set(fixes.no_match)
    references = {k: p for k, p in earlier.references.items() if k not in rejected}
    references.update(dict(fixes.references))
    lookalikes = dict(earlier.lookalikes)
    for view, points in fixes.lookalikes:
        if view != reference:
            lookalikes[view] = (*lookalikes.get(view, ()), *points)
    return ViewPrompts(references, frozenset((earlier.no_match | rejected) - set(references)),
                       lookalikes)
