"""The prepare page's decisions: pure rules, and the file written atomically after each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodseg.errors import InputError
from prodseg.producer.catalog.file import catalog_id, read_catalog
from prodseg.producer.prepare_page.decisions import (
    ACCEPTED,
    CORRECTED,
    DECISION_COLUMN,
    SKIPPED,
    Decision,
    PreparedFile,
    decide,
    first_open,
    format_numbers,
    progress,
)

ROW = {"product_id": "milk", "images": "milk", "reference": "milk/v0.png",
       "point": "40,30", "prompt_source": "proposed", "prompt_confidence": "0.91"}


def test_accepting_the_proposal_as_it_is_confirms_it() -> None:
    row = decide(ROW, Decision("accept", "milk/v0.png", ((40, 30),)))
    assert row["prompt_source"] == "confirmed" and row[DECISION_COLUMN] == ACCEPTED
    assert row["point"] == "40,30" and row["prompt_confidence"] == "0.91"
    assert ROW["prompt_source"] == "proposed"  # the row given is not changed


def test_another_click_box_or_reference_is_a_correction() -> None:
    moved = decide(ROW, Decision("accept", "milk/v0.png", ((41.25, 30),), ((5, 5),)))
    assert (moved["point"], moved["neg_point"], moved[DECISION_COLUMN]) == \
        ("41.25,30", "5,5", CORRECTED)
    boxed = decide(ROW, Decision("accept", "milk/v0.png", (), (), (1, 2, 30.5, 40)))
    assert (boxed["point"], boxed["box"], boxed[DECISION_COLUMN]) == ("", "1,2,30.5,40",
                                                                      CORRECTED)
    other = decide(ROW, Decision("accept", "milk/v3.png", ((40, 30),)))
    assert other["reference"] == "milk/v3.png" and other[DECISION_COLUMN] == CORRECTED


def test_a_skip_leaves_the_proposal_and_an_accept_needs_a_prompt() -> None:
    skipped = decide(ROW, Decision("skip"))
    assert skipped[DECISION_COLUMN] == SKIPPED and skipped["prompt_source"] == "proposed"
    with pytest.raises(InputError, match="needs a click on the product or a box"):
        decide(ROW, Decision("accept", "milk/v0.png"))
    with pytest.raises(InputError, match="unknown decision"):
        decide(ROW, Decision("reject"))


def test_progress_and_where_the_operator_goes_on() -> None:
    rows = [dict(ROW, product_id=f"p{k}") for k in range(5)]
    rows[0] = decide(rows[0], Decision("skip"))
    rows[1] = decide(rows[1], Decision("accept", "milk/v0.png", ((1, 1),)))
    rows[3] = decide(rows[3], Decision("accept", "milk/v0.png", ((40, 30),)))
    assert progress(rows) == {"products": 5, "decided": 3, "accepted": 1, "corrected": 1,
                              "skipped": 1}
    assert first_open(rows) == 2 and first_open(rows, 3) == 4 and first_open(rows, 5) == 2
    assert first_open([decide(ROW, Decision("skip"))]) is None
    assert format_numbers((3.0, 2.456, 7)) == "3,2.46,7"


def _write(path: Path, rows: int) -> None:
    lines = ["product_id,images,reference,point,prompt_source,prompt_confidence,note"]
    lines += [f"p{k},p{k},p{k}/v0.png,\"{10 + k},20\",proposed,0.5,\"a, b\"" for k in
              range(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_each_decision_is_in_the_file_at_once_and_reopening_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "shelf.csv"
    _write(path, 3)
    prepared = PreparedFile(path)
    cid = prepared.ensure_catalog()
    assert cid.startswith("cat-") and PreparedFile(path).ensure_catalog() == cid
    prepared.record("p0", Decision("accept", "p0/v0.png", ((10, 20),)))
    prepared.record("p1", Decision("accept", "p1/v2.png", ((5, 6),)))
    again = PreparedFile(path)
    assert [r.get(DECISION_COLUMN) for r in again.rows] == [ACCEPTED, CORRECTED, ""]
    assert first_open(again.rows) == 2 and again.rows[0]["note"] == "a, b"
    assert [p.name for p in tmp_path.iterdir()] == ["shelf.csv"]  # no temporary left
    catalog = read_catalog(path)
    assert not catalog.problems and catalog_id(catalog.products) == cid
    assert catalog.products[1].reference == str(tmp_path / "p1" / "v2.png")
    assert catalog.products[1].prompt.points == ((5.0, 6.0),)


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shelf.csv"
    _write(path, 2)
    prepared = PreparedFile(path)
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        prepared.record("p0", Decision("skip"))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["shelf.csv"]


def test_jsonl_files_keep_their_values(tmp_path: Path) -> None:
    path = tmp_path / "shelf.jsonl"
    path.write_text('{"product_id": "a", "images": ["a/v0.png", "a/v1.png"], '
                    '"reference": "a/v0.png", "point": [[3, 4]], "prompt_source": "proposed"}\n')
    prepared = PreparedFile(path)
    prepared.ensure_catalog()
    prepared.record("a", Decision("accept", "a/v0.png", ((3, 4),)))
    (product,) = read_catalog(path).products
    assert product.images == (str(tmp_path / "a/v0.png"), str(tmp_path / "a/v1.png"))
    assert PreparedFile(path).rows[0][DECISION_COLUMN] == ACCEPTED


def test_rows_naming_different_catalogs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "shelf.csv"
    path.write_text("product_id,images,reference,point,catalog\n"
                    "a,a,a/v0.png,\"1,2\",cat-000000000001\n"
                    "b,b,b/v0.png,\"1,2\",cat-000000000002\n")
    with pytest.raises(InputError, match="different catalogs"):
        PreparedFile(path).ensure_catalog()
    with pytest.raises(InputError, match="give every row the same one"):
        catalog_id(read_catalog(path).products)
    path.write_text("product_id,images,reference,point,catalog\na,a,a/v0.png,\"1,2\",cat-12\n")
    assert "catalog 'cat-12' is not a catalog id" in str(read_catalog(path).problems[0])


def test_the_stored_catalog_follows_the_file_for_products_not_yet_submitted(
        tmp_path: Path) -> None:
    from types import SimpleNamespace

    from prodseg.producer.catalog.client import CatalogClient
    from prodseg.producer.catalog.products import Product
    from prodseg.storage.local import LocalStore

    store = LocalStore(tmp_path / "store")
    client = CatalogClient(SimpleNamespace(store=store))  # type: ignore[arg-type]

    def product(name: str, x: float) -> Product:
        return Product(name, f"cat-000000000001-{name}", 1, ("a.png",), "a.png",
                       {"points": [[x, 1.0]], "labels": [1], "box": None}, {})

    client.update([product("a", 1), product("b", 1)], "cat-000000000001", "shelf.csv")
    store.put("catalogs/cat-000000000001/products/a.json", b'{"job": "x"}')
    client.update([product("a", 5), product("b", 5)], "cat-000000000001", "shelf.csv")
    stored = {p.product: p.prompt["points"] for p in client.products("cat-000000000001")}
    assert stored == {"a": [[1.0, 1.0]], "b": [[5.0, 1.0]]}  # a ran with its first prompt
