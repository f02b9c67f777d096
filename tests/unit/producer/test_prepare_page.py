"""The prepare page's session and server over real HTTP on 127.0.0.1, with previews from
the classic segmenter in this process: what a product shows, thumbnails, a preview, each
decision in the file at once, the next product, and the review page's rules."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prodseg.producer.catalog.file import catalog_id, read_catalog
from prodseg.producer.prepare_page.decisions import DECISION_COLUMN, PreparedFile
from prodseg.producer.prepare_page.launch import PreparePage, prepare_page
from prodseg.settings import load_settings
from tests.support.prepared import PreparedSet, write_prepared

TOKEN_HEADER = "X-Prodseg-Token"


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[PreparePage, PreparedSet]]:
    prepared = write_prepared(tmp_path, 4, wrong_every=2)
    built = prepare_page(prepared.path, load_settings(backend="classic"), None, "local")
    built.server.start()
    try:
        yield built, prepared
    finally:
        built.server.stop()
        built.close()


def _call(page: PreparePage, method: str, path: str, doc: Any = None,
          token: str | None = None, host: str | None = None) -> tuple[int, bytes, Any]:
    server = page.server
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {TOKEN_HEADER: server.token if token is None else token,
               "Host": host or f"127.0.0.1:{server.port}"}
    body = None if doc is None else json.dumps(doc).encode()
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    return answer.status, data, answer.headers


def _json(page: PreparePage, method: str, path: str, doc: Any = None) -> Any:
    status, data, _ = _call(page, method, path, doc)
    assert status == 200, data
    return json.loads(data)


def test_a_product_its_views_a_preview_and_each_decision_in_the_file(page) -> None:
    built, prepared = page
    state = _json(built, "GET", "/api/state")
    assert state["open"] == 0 and state["progress"]["products"] == 4
    assert state["catalog"].startswith("cat-")
    product = _json(built, "GET", "/api/product/1")
    assert product["product"] == "p0001" and product["reference"] == 0
    assert product["views"] == ["view_00.png", "view_01.png", "view_02.png"]
    assert (product["width"], product["height"]) == (128, 96)
    assert product["source"] == "proposed" and product["confidence"] == 0.21

    status, data, headers = _call(built, "GET", "/api/product/1/view/2/thumb")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert max(Image.open(__import__("io").BytesIO(data)).size) <= 160
    assert "default-src 'none'" in headers["Content-Security-Policy"]

    x, y = prepared.inside["p0001"]
    shown = _json(built, "POST", "/api/product/1/preview", {"view": 0, "points": [[x, y]]})
    assert shown["area"] > 100 and shown["mask"].startswith("data:image/png;base64,")
    decided = _json(built, "POST", "/api/product/1/decide",
                    {"action": "accept", "view": 0, "points": [[x, y]]})
    assert decided["decision"] == "corrected" and decided["next"] == 2
    assert decided["progress"]["decided"] == 1
    row = PreparedFile(prepared.path).rows[1]
    assert (row["point"], row["prompt_source"], row[DECISION_COLUMN]) == \
        (f"{x},{y}", "confirmed", "corrected")

    _json(built, "POST", "/api/product/0/decide",
          {"action": "accept", "view": 0, "points": product_points(built, 0)})
    _json(built, "POST", "/api/product/2/decide", {"action": "skip"})
    moved = _json(built, "POST", "/api/product/3/decide",
                  {"action": "accept", "view": 2, "box": [10, 10, 60, 70]})
    assert moved["next"] is None and moved["progress"] == {
        "products": 4, "decided": 4, "accepted": 1, "corrected": 2, "skipped": 1}
    catalog = read_catalog(prepared.path)
    assert not catalog.problems
    assert catalog_id(catalog.products) == state["catalog"]
    last = catalog.products[3]
    assert last.reference.endswith("p0003/view_02.png") and last.prompt is not None
    assert last.prompt.box == (10.0, 10.0, 60.0, 70.0) and last.prompt_source == "confirmed"


def product_points(built: PreparePage, index: int) -> list[list[float]]:
    return list(_json(built, "GET", f"/api/product/{index}")["points"])


def test_the_review_page_rules_hold(page) -> None:
    built, _ = page
    assert _call(built, "GET", "/api/state", token="nope")[0] == 403
    assert _call(built, "GET", "/api/state", host="evil.example:80")[0] == 403
    status, data, _ = _call(built, "POST", "/api/product/0/decide", {"action": "accept",
                                                                      "view": 9})
    assert status == 400 and data.decode().strip() == "400 product 0 has no view 9"
    status, data, _ = _call(built, "GET", "/api/product/99")
    assert status == 400 and b"no product 99: the catalog has 4" in data
    status, data, _ = _call(built, "POST", "/api/product/0/decide", {"action": "accept",
                                                                      "view": 0})
    assert status == 400 and b"a click on the product or a box" in data
    assert _call(built, "GET", "/nothing")[0] == 404


def test_memory_stays_flat_however_far_the_page_goes(tmp_path: Path) -> None:
    prepared = write_prepared(tmp_path, 30, wrong_every=0)
    built = prepare_page(prepared.path, load_settings(backend="classic"), None, "local")
    session = built.server.session
    for index in range(30):
        session.product(index)
        for view in range(3):
            session.image_jpeg(index, view, True)
    assert len(session._views) <= 8 and len(session._photos) <= 6
    assert isinstance(next(iter(session._photos.values())), np.ndarray)
