"""The catalog review report: rows from results documents, review flags, CSV and HTML."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from prodseg.storage.exports.catalog_report import (
    ProductRow,
    ReviewRules,
    product_row,
    report_csv,
    report_html,
)
from tests.support.outcomes import record


def _doc(scores: list[float | None], failed: int = 0, threshold: float = 0.7) -> dict[str, Any]:
    images: list[dict[str, Any]] = []
    for k, score in enumerate(scores):
        matches = [] if score is None else [{"score": score}, {"score": score - 0.1}]
        images.append({"image": f"v{k}", "status": "ok", "matches": matches,
                       "thumbnail": f"thumbs/v{k}.jpg"})
    images += [{"image": f"bad{k}", "status": "error", "error": "x", "matches": [],
                "thumbnail": None} for k in range(failed)]
    return {"settings": {"similarity_threshold": threshold},
            "reference": {"thumbnail": "thumbs/ref.jpg"}, "images": images}


def test_a_clean_product_is_not_flagged() -> None:
    row = product_row("milk", "j1", "done", _doc([0.9, 0.95, None, 0.85]), ReviewRules())
    assert (row.views, row.matched, row.failed) == (4, 3, 0)
    assert math.isclose(row.mean_score, 0.9) and math.isclose(row.lowest_score, 0.85)
    assert row.reasons == () and not row.review
    assert row.reference_thumbnail == "thumbs/ref.jpg"
    assert row.weakest_thumbnail == "thumbs/v3.jpg"


def test_each_reason_to_review() -> None:
    rules = ReviewRules(min_matched_fraction=0.5, score_margin=0.05)
    few = product_row("a", "j", "done", _doc([0.9, None, None, None]), rules)
    assert few.reasons == ("matched 1 of 4 views",)
    weak = product_row("b", "j", "done", _doc([0.9, 0.72]), rules)
    assert weak.reasons == ("lowest score 0.720 is within 0.05 of the threshold 0.7",)
    broken = product_row("c", "j", "done", _doc([0.9], failed=1), rules)
    assert broken.reasons == ("1 of 2 photos failed",)
    failed = product_row("d", "j", "failed", None, rules, "reference: no mask")
    assert failed.reasons == ("job failed: reference: no mask",) and failed.views == 0
    none = product_row("e", "j", "done", _doc([None, None]), rules)
    assert math.isnan(none.mean_score) and none.reasons == ("matched 0 of 2 views",)


def test_csv_has_a_header_and_one_line_per_product() -> None:
    rows = [product_row("milk", "j1", "done", _doc([0.9, 0.8]), ReviewRules()),
            product_row("tea", "", "refused", None, ReviewRules(), "line 3: file not found")]
    table = list(csv.DictReader(io.StringIO(report_csv(rows).decode())))
    assert [r["product"] for r in table] == ["milk", "tea"]
    assert table[0]["mean_score"] == "0.8500" and table[0]["review"] == "no"
    assert table[1]["mean_score"] == "" and table[1]["review"] == "yes"
    assert table[1]["reasons"] == "job refused: line 3: file not found"


def test_html_is_self_contained_escaped_and_marks_reviews() -> None:
    rows = [ProductRow("<b>milk</b>", "j1", "done", 2, 1, 0, 0.9, 0.9, ("matched 1 of 2",),
                       "thumbs/ref.jpg", None)]
    page = report_html("cat-1", rows, {("j1", "thumbs/ref.jpg"): b"\xff\xd8jpeg"}).decode()
    assert "&lt;b&gt;milk&lt;/b&gt;" in page and "<b>milk</b>" not in page
    assert 'src="data:image/jpeg;base64,/9hqcGVn"' in page
    assert 'class="review" data-review="1"' in page and "1 to review" in page
    assert "http://" not in page and "https://" not in page


def test_csv_cells_never_start_a_formula() -> None:
    """OWASP's CSV injection: a reviewer name or an id starting ``= + - @`` (or a tab or a
    carriage return) is written with a leading ``'``; negative numbers stay numbers."""
    base = product_row("-milk", "cat-1--milk", "done", _doc([0.9]), ReviewRules())
    cells = {"reviewed_by": '=HYPERLINK("http://x.test","click")', "reviewed_at": "@SUM(A1)",
             "bank": ("+v1", "\tv2"), "tracked": ("\rv3",)}
    row = ProductRow(**{**base.__dict__, **cells, "mean_score": -0.25})
    (table,) = csv.DictReader(io.StringIO(report_csv([row]).decode(), newline=""))
    assert table["product"] == "'-milk" and table["job"] == "cat-1--milk"
    assert table["reviewed_by"] == "'" + cells["reviewed_by"]
    assert table["reviewed_at"] == "'@SUM(A1)"
    assert table["bank"] == "'+v1 \tv2" and table["tracked"] == "'\rv3"
    assert table["mean_score"] == "-0.2500"
    assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for k, v in table.items()
                   if k != "mean_score")
    record("security", "report.csv cells starting = + - @, tab or CR (a reviewer named "
           "=HYPERLINK(...), a product id starting -)",
           f"written as text with a leading quote: {table['reviewed_by'][:12]!r}..., "
           f"{table['product']!r}; a negative score stays the number {table['mean_score']}")


def test_a_low_confidence_proposal_is_flagged_with_its_reason() -> None:
    doc = _doc([0.9, 0.95])
    doc["reference"]["prompt_source"] = "proposed"
    doc["reference"]["proposal"] = {"confidence": 0.3, "why": "low: not in every view"}
    row = product_row("milk", "j1", "done", doc, ReviewRules())
    assert row.reasons == ("proposed prompt, confidence 0.30: low: not in every view",)
    assert (row.prompt_source, row.prompt_confidence) == ("proposed", 0.3)
    doc["reference"]["proposal"] = {"confidence": 0.8, "why": "high: ..."}
    assert not product_row("milk", "j1", "done", doc, ReviewRules()).review
    prepared = product_row("soap", "j2", "done", _doc([0.9]), ReviewRules(),
                           prompt_source="proposed", prompt_confidence=0.2)
    assert prepared.reasons == ("proposed prompt, confidence 0.20",)
    confirmed = product_row("tea", "j3", "done", _doc([0.9]), ReviewRules(),
                            prompt_source="confirmed", prompt_confidence=0.2)
    assert not confirmed.review  # a person looked at it
    table = list(csv.DictReader(io.StringIO(report_csv([row, prepared, confirmed]).decode())))
    assert [(r["prompt_source"], r["prompt_confidence"]) for r in table] == [
        ("proposed", "0.3000"), ("proposed", "0.2000"), ("confirmed", "0.2000")]
    assert b"proposed 0.30" in report_html("cat-1", [row], {})


def test_the_coco_export_says_where_each_product_prompt_came_from() -> None:
    from prodseg.storage.exports.dataset import coco_dataset

    doc = coco_dataset(["milk", "tea"], [], [], {
        "milk": {"prompt_source": "proposed", "prompt_confidence": 0.8}})
    assert doc["categories"] == [
        {"id": 1, "name": "milk", "prompt_source": "proposed", "prompt_confidence": 0.8},
        {"id": 2, "name": "tea"}]
