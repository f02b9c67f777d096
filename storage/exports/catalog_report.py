"""The review report of a catalog: one row per product, as CSV and as one HTML page.

Pure functions from each product's ``results.json`` document (or its job's state when
it has none) to rows, and from rows to bytes. A product is flagged for review when a
person should look at it: its job did not finish, some photos failed, too few views
matched, or its weakest match is close to the similarity threshold.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prodseg.proposed import CONFIDENT
from prodseg.storage.exports.markup import escape

CSV_FIELDS = ("product", "job", "state", "views", "matched", "failed", "mean_score",
              "lowest_score", "bank", "tracked", "review", "reasons", "reviewed",
              "reviewed_by", "reviewed_at", "runs", "prompt_source", "prompt_confidence")


@dataclass(frozen=True)
class ReviewRules:
    """When a product needs a person's look.

    Attributes:
        min_matched_fraction: fewer matched views than this fraction of the views.
        score_margin: the lowest best-match score is less than this above the job's
            similarity threshold.
    """

    min_matched_fraction: float = 0.5
    score_margin: float = 0.05


@dataclass(frozen=True)
class ProductRow:
    """One product in the report.

    Attributes:
        product: the product id.
        job: its job id ("" when it was never enqueued).
        state: the job's state, or ``refused`` / ``waiting``.
        views: target photos.
        matched: photos with at least one match.
        failed: photos that could not be processed.
        mean_score: mean of each matched photo's best score (NaN without matches).
        lowest_score: the lowest of them (NaN without matches).
        reasons: why it is flagged for review (empty: it is not).
        reference_thumbnail: key (relative to the job) of the reference's thumbnail.
        weakest_thumbnail: thumbnail of the matched photo with the lowest score.
        bank: the views that joined the prototype bank (besides the reference).
        tracked: the views whose mask the spin tracker gave.
        reviewed_by: who reviewed the product in ``prodseg catalog review`` (comma
            separated; empty: nobody).
        reviewed_at: when it was last changed in review (ISO-8601 UTC).
        runs: how many times it was re-run after review; ``job`` and the figures are
            then the newest run's.
        prompt_source: where the reference prompt came from: ``clicked``, ``proposed``
            (at run time, or by ``catalog prepare`` and used as is) or ``confirmed``.
        prompt_confidence: a proposed or confirmed prompt's confidence (NaN: none).
    """

    product: str
    job: str
    state: str
    views: int
    matched: int
    failed: int
    mean_score: float
    lowest_score: float
    reasons: tuple[str, ...]
    reference_thumbnail: str | None = None
    weakest_thumbnail: str | None = None
    bank: tuple[str, ...] = ()
    tracked: tuple[str, ...] = ()
    reviewed_by: str = ""
    reviewed_at: str = ""
    runs: int = 0
    prompt_source: str = "clicked"
    prompt_confidence: float = math.nan

    @property
    def review(self) -> bool:
        """Whether a person should look at this product."""
        return bool(self.reasons)


def product_row(product: str, job: str, state: str, doc: Mapping[str, Any] | None,
                rules: ReviewRules, message: str = "", prompt_source: str = "clicked",
                prompt_confidence: float | None = None) -> ProductRow:
    """The report row of one product.

    Args:
        product: the product id.
        job: its job id.
        state: its job's state (``done`` when ``doc`` is given).
        doc: the job's ``results.json`` document; None when the job has none.
        rules: the review rules.
        message: why the job failed or was refused, if it did.
        prompt_source: where the catalog file says the prompt came from; a prompt
            proposed when the job ran (``results.json``'s reference) says so itself.
        prompt_confidence: the catalog file's confidence of a proposed prompt.
    """
    reference = (doc or {}).get("reference", {})
    proposal = reference.get("proposal")
    if proposal is not None:
        prompt_source, prompt_confidence = "proposed", float(proposal["confidence"])
    confidence = math.nan if prompt_confidence is None else float(prompt_confidence)
    unsure = []
    if prompt_source == "proposed" and not confidence >= CONFIDENT:
        why = f": {proposal['why']}" if proposal is not None else ""
        unsure.append(f"proposed prompt, confidence {_number(confidence, 2) or 'unknown'}"
                      f"{why}")
    if doc is None:
        reason = f"job {state}" + (f": {message}" if message else "")
        return ProductRow(product, job, state, 0, 0, 0, math.nan, math.nan,
                          (reason, *unsure), prompt_source=prompt_source,
                          prompt_confidence=confidence)
    images = doc.get("images", [])
    best = {e["image"]: max(m["score"] for m in e["matches"])
            for e in images if e.get("status") == "ok" and e.get("matches")}
    failed = sum(1 for e in images if e.get("status") != "ok")
    scores = list(best.values())
    mean = sum(scores) / len(scores) if scores else math.nan
    lowest = min(scores) if scores else math.nan
    reasons = unsure
    if failed:
        reasons.append(f"{failed} of {len(images)} photos failed")
    if len(best) < rules.min_matched_fraction * len(images) or not images:
        reasons.append(f"matched {len(best)} of {len(images)} views")
    threshold = doc.get("settings", {}).get("similarity_threshold")
    if scores and threshold is not None and lowest < float(threshold) + rules.score_margin:
        reasons.append(f"lowest score {lowest:.3f} is within {rules.score_margin:g} of the "
                       f"threshold {float(threshold):g}")
    weakest = min(best, key=lambda k: best[k]) if best else None
    thumbs = {e["image"]: e.get("thumbnail") for e in images}
    bank = [v for v in (doc.get("prototype_bank") or {}).get("prototypes", [])
            if v != "reference"]
    tracked = [e["image"] for e in images if e.get("found_by") == "tracked"]
    return ProductRow(product, job, state, len(images), len(best), failed, mean, lowest,
                      tuple(reasons), reference.get("thumbnail"),
                      thumbs.get(weakest) if weakest else None, tuple(bank), tuple(tracked),
                      prompt_source=prompt_source, prompt_confidence=confidence)


def report_csv(rows: Sequence[ProductRow]) -> bytes:
    """The rows as UTF-8 CSV with a header (``CSV_FIELDS``); scores to 4 decimals.

    Text cells go through ``spreadsheet_text``, so none is read as a formula. Lines end
    in CRLF (RFC 4180), so a cell holding a carriage return is quoted, not split.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for r in rows:
        text = [spreadsheet_text(v) for v in (
            r.product, r.job, r.state, " ".join(r.bank), " ".join(r.tracked),
            "; ".join(r.reasons), r.reviewed_by, r.reviewed_at)]
        product, job, state, bank, tracked, reasons, reviewed_by, reviewed_at = text
        writer.writerow([product, job, state, r.views, r.matched, r.failed,
                         _number(r.mean_score), _number(r.lowest_score), bank, tracked,
                         "yes" if r.review else "no", reasons,
                         "yes" if r.reviewed_by else "no", reviewed_by, reviewed_at, r.runs,
                         r.prompt_source, _number(r.prompt_confidence)])
    return out.getvalue().encode("utf-8")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """A text cell no spreadsheet reads as a formula (OWASP's CSV injection advice).

    A cell starting with ``= + - @``, a tab or a carriage return gets a leading ``'``,
    which spreadsheets show as text and do not evaluate. Numbers are written apart from
    text, so a negative score stays a number.
    """
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def report_html(catalog: str, rows: Sequence[ProductRow],
                thumbnails: Mapping[tuple[str, str], bytes]) -> bytes:
    """One self-contained page: a summary and a sortable table with thumbnails.

    Args:
        catalog: the catalog id (the title).
        rows: the report rows.
        thumbnails: JPEG bytes by ``(job, thumbnail key)``; missing ones are left blank.
    """
    flagged = sum(r.review for r in rows)
    body = "\n".join(_html_row(r, thumbnails) for r in rows)
    return _PAGE.format(
        title=escape(f"prodseg catalog {catalog}"), catalog=escape(catalog), products=len(rows),
        flagged=flagged, done=sum(r.state == "done" for r in rows), rows=body,
        reviewed=sum(bool(r.reviewed_by) for r in rows),
    ).encode("utf-8")


def _html_row(r: ProductRow, thumbnails: Mapping[tuple[str, str], bytes]) -> str:
    cells = [
        f"<td>{escape(r.product)}</td>",
        f"<td>{_img(thumbnails, r.job, r.reference_thumbnail)}</td>",
        f"<td>{_img(thumbnails, r.job, r.weakest_thumbnail)}</td>",
        f"<td>{escape(r.state)}</td>",
        f'<td data-v="{r.matched}">{r.matched} / {r.views}</td>',
        f'<td data-v="{r.failed}">{r.failed}</td>',
        f'<td data-v="{_number(r.mean_score) or -1}">{_number(r.mean_score, 3)}</td>',
        f'<td data-v="{_number(r.lowest_score) or -1}">{_number(r.lowest_score, 3)}</td>',
        f'<td data-v="{len(r.bank)}" title="{escape(" ".join(r.bank))}">{len(r.bank)}</td>',
        f'<td data-v="{len(r.tracked)}" title="{escape(" ".join(r.tracked))}">'
        f"{len(r.tracked)}</td>",
        f"<td>{'<br>'.join(escape(x) for x in r.reasons)}</td>",
        f"<td>{_reviewed(r)}</td>",
        f'<td data-v="{_number(r.prompt_confidence) or -1}">{escape(r.prompt_source)} '
        f"{_number(r.prompt_confidence, 2)}</td>",
    ]
    kind = "review" if r.review else "ok"
    return f'<tr class="{kind}" data-review="{int(r.review)}">' + "".join(cells) + "</tr>"


def _reviewed(r: ProductRow) -> str:
    if not r.reviewed_by:
        return ""
    runs = f", re-run {r.runs}x" if r.runs else ""
    return escape(f"{r.reviewed_by} at {r.reviewed_at}{runs}")


def _img(thumbnails: Mapping[tuple[str, str], bytes], job: str, key: str | None) -> str:
    data = thumbnails.get((job, key)) if key else None
    if not data:
        return ""
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return f'<img src="{uri}" alt="{escape(key)}">'


def _number(value: float, digits: int = 4) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left;
          vertical-align: middle; }}
th {{ cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }}
tr.review {{ background: #fff4e0; }}
img {{ max-height: 96px; max-width: 128px; }}
</style></head>
<body>
<h1>Catalog {catalog}</h1>
<p>{products} products, {done} done, <strong>{flagged} to review</strong>, {reviewed}
reviewed.
Click a column to sort; <label><input type="checkbox" id="only"> only those to review</label>.</p>
<table id="report"><thead><tr>
<th>product</th><th>reference</th><th>weakest match</th><th>state</th><th>matched</th>
<th>failed</th><th>mean score</th><th>lowest score</th><th title="views that joined the
prototype bank">bank</th><th title="views the spin tracker gave">tracked</th><th>review</th>
<th>reviewed</th><th title="clicked, proposed or confirmed, and a proposal's
confidence">prompt</th>
</tr></thead><tbody>
{rows}
</tbody></table>
<script>
(function () {{
  var body = document.querySelector("#report tbody");
  var dir = {{}};
  document.querySelectorAll("#report th").forEach(function (th, col) {{
    th.addEventListener("click", function () {{
      dir[col] = -(dir[col] || -1);
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {{
        var x = a.cells[col], y = b.cells[col];
        var vx = x.dataset.v !== undefined ? parseFloat(x.dataset.v) : x.textContent;
        var vy = y.dataset.v !== undefined ? parseFloat(y.dataset.v) : y.textContent;
        return (vx < vy ? -1 : vx > vy ? 1 : 0) * dir[col];
      }});
      rows.forEach(function (r) {{ body.appendChild(r); }});
    }});
  }});
  document.getElementById("only").addEventListener("change", function (e) {{
    Array.prototype.forEach.call(body.rows, function (r) {{
      r.hidden = e.target.checked && r.dataset.review !== "1";
    }});
  }});
}})();
</script>
</body></html>
"""
