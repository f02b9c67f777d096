"""The review server's rules, over real HTTP on 127.0.0.1: the token on every request, the
Host header, changes only with the token header, errors as one line, no token in logs."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from prodseg.errors import InputError
from prodseg.producer.review.server import MAX_BODY_BYTES, ReviewServer
from prodseg.producer.review.session import clicks_of
from prodseg.storage.base import ObjectNotFound
from tests.support.outcomes import record

TOKEN = "t0ken-for-the-test"


class StubSession:
    """What the server calls, answering from memory (the session has its own tests)."""

    catalog = "cat-0123456789ab"
    reviewer = "ana"

    def __init__(self) -> None:
        self.changes: list[tuple[str, dict[str, Any]]] = []

    def products(self) -> list[dict[str, Any]]:
        return [{"product": "milk", "flagged": True}]

    def product(self, product: str) -> dict[str, Any]:
        if product != "milk":
            raise InputError(f"no product {product!r} in catalog {self.catalog}")
        return {"product": product}

    def change(self, product: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.changes.append((product, doc))
        return {"product": product, "views": {}}

    def preview(self, product: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {"points": clicks_of(doc.get("points"))}  # the session's own parser

    def overlay_png(self, product: str, view: str) -> bytes:
        raise ObjectNotFound(f"jobs/j/masks/{view}_0.png")  # a stored mask gone missing

    def image_jpeg(self, product: str, view: str) -> bytes:
        raise RuntimeError("a bug")


@pytest.fixture
def server() -> Iterator[tuple[ReviewServer, StubSession]]:
    session = StubSession()
    srv = ReviewServer(session, token="t0ken-for-the-test")  # type: ignore[arg-type]
    srv.start()
    try:
        yield srv, session
    finally:
        srv.stop()


def _request(srv: ReviewServer, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_it_listens_on_loopback_and_prints_a_url_with_the_token(server) -> None:
    srv, _ = server
    assert srv.url == f"http://127.0.0.1:{srv.port}/?token=t0ken-for-the-test"
    assert {s.getsockname()[0] for s in srv._sockets} == {"127.0.0.1"}
    other = ReviewServer(StubSession())  # type: ignore[arg-type]
    try:
        assert len(other.token) >= 32 and other.token != srv.token  # random per start
    finally:
        other.stop()


@pytest.mark.parametrize("path", ["/", "/api/products", "/api/product/milk",
                                  "/api/product/milk/view/v1/image"])
def test_every_route_refuses_a_request_without_the_right_token(server, path: str) -> None:
    srv, _ = server
    assert _request(srv, "GET", path)[0] == 403
    assert _request(srv, "GET", path + "?token=wrong")[0] == 403
    assert _request(srv, "GET", path, headers={"X-Prodseg-Token": "t0ken-for-the-tes"})[0] == 403


def test_the_page_and_the_api_with_the_token(server) -> None:
    srv, _ = server
    status, headers, body = _request(srv, "GET", "/?token=t0ken-for-the-test")
    assert status == 200 and b"prodseg review cat-0123456789ab" in body
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
    status, _, body = _request(srv, "GET", "/api/products",
                               headers={"X-Prodseg-Token": "t0ken-for-the-test"})
    assert status == 200 and json.loads(body)["products"][0]["product"] == "milk"


def test_another_host_name_is_refused_even_with_the_token(server) -> None:
    srv, _ = server
    status, _, _ = _request(srv, "GET", "/?token=t0ken-for-the-test",
                            headers={"Host": f"attacker.example:{srv.port}"})
    assert status == 403
    status, _, _ = _request(srv, "GET", "/?token=t0ken-for-the-test",
                            headers={"Host": f"localhost:{srv.port}"})
    assert status == 200


def test_changes_need_the_token_header_not_just_the_query(server) -> None:
    srv, session = server
    body = json.dumps({"view": "v1", "action": "reject"}).encode()
    status, _, _ = _request(srv, "POST", "/api/product/milk/change?token=t0ken-for-the-test",
                            body, {"Content-Type": "application/json"})
    assert status == 403 and session.changes == []
    status, _, answer = _request(srv, "POST", "/api/product/milk/change", body,
                                 {"X-Prodseg-Token": "t0ken-for-the-test"})
    assert status == 200 and session.changes == [("milk", {"view": "v1", "action": "reject"})]
    status, _, answer = _request(srv, "POST", "/api/product/milk/change", b"[1, 2",
                                 {"X-Prodseg-Token": "t0ken-for-the-test"})
    assert status == 400 and b"not JSON" in answer


def test_input_errors_are_one_line_and_the_token_is_never_logged(server, caplog) -> None:
    srv, _ = server
    caplog.set_level(logging.INFO, logger="prodseg.producer.review")
    status, _, body = _request(srv, "GET", "/api/product/tea?token=t0ken-for-the-test")
    assert status == 400
    assert body.decode().strip() == "400 no product 'tea' in catalog cat-0123456789ab"
    _request(srv, "GET", "/?token=t0ken-for-the-test")
    lines = [r.getMessage() for r in caplog.records]
    assert any("/api/product/tea" in line for line in lines)
    assert not any("t0ken" in line for line in lines)



def _raw(srv: ReviewServer, head: str, timeout: float = 5.0) -> bytes:
    """Send request headers only (the body never comes); what the server answers."""
    import socket

    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b"(no answer: the server waits for the body)"


def test_the_token_is_checked_before_a_byte_of_the_body_is_read(server) -> None:
    srv, session = server
    head = (f"POST /api/product/milk/change HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {90 * 2**20}\r\n")
    answer = _raw(srv, head + "\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    status_line = answer.splitlines()[0].decode()
    record("security", "a review-page POST announcing a 90 MB body, without the token",
           f"answered {status_line!r} on its headers, before any "
           "of the body was read; with the token, a body over 64 KiB is refused unread")
    # With the token, a body over the cap is refused unread: the connection is closed.
    answer = _raw(srv, head + f"X-Prodseg-Token: {TOKEN}\r\n\r\n")
    assert not answer.startswith(b"HTTP/1.1 200") and b"waits for the body" not in answer
    small = json.dumps({"view": "v1", "action": "accept", "pad": "x" * 1000}).encode()
    assert len(small) < MAX_BODY_BYTES
    status, _, _ = _request(srv, "POST", "/api/product/milk/change", small,
                            {"X-Prodseg-Token": TOKEN})
    assert status == 200 and session.changes[-1][1]["view"] == "v1"


@pytest.mark.parametrize("points", [5, [[1]], [["a", "b"]], [[1, 2, 3]], "[[1, 2]]",
                                    [[1, float("inf")]], [[True, 2]]])
def test_malformed_clicks_are_a_400_and_no_log_line_holds_the_token(server, caplog,
                                                                    points: Any) -> None:
    srv, _ = server
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"view": "v1", "points": points}).encode()
    status, _, answer = _request(srv, "POST", f"/api/product/milk/preview?token={TOKEN}",
                                 body, {"X-Prodseg-Token": TOKEN})
    assert status == 400 and b"[x, y] pairs" in answer, answer
    assert TOKEN not in caplog.text


def test_server_errors_and_missing_masks_log_no_token(server, caplog) -> None:
    srv, _ = server
    caplog.set_level(logging.DEBUG)
    status, _, _ = _request(srv, "GET", f"/api/product/milk/view/v1/overlay?token={TOKEN}")
    assert status == 404
    status, _, body = _request(srv, "GET", f"/api/product/milk/view/v1/image?token={TOKEN}")
    assert status == 500 and TOKEN.encode() not in body
    assert "/api/product/milk/view/v1/image" in caplog.text and "a bug" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/product/milk/view/v1/x",
                                  "/favicon.ico"])
def test_unrouted_paths_pass_the_same_checks(server, path: str) -> None:
    srv, _ = server
    assert _request(srv, "GET", path)[0] == 403
    assert _request(srv, "GET", f"{path}?token={TOKEN}",
                    headers={"Host": f"attacker.example:{srv.port}"})[0] == 403
    status, headers, body = _request(srv, "GET", f"{path}?token={TOKEN}")
    assert status == 404 and body == b"404 not found\n"
    assert headers["X-Frame-Options"] == "DENY" and "default-src 'none'" in headers[
        "Content-Security-Policy"]
    assert "Server" not in headers and b"Tornado" not in body


def test_a_post_from_another_origin_is_refused(server) -> None:
    srv, session = server
    body = json.dumps({"view": "v1", "action": "reject"}).encode()
    for origin, expected in (("http://evil.example", 403), ("null", 403),
                             (f"http://localhost:{srv.port + 1}", 403),
                             (f"http://127.0.0.1:{srv.port}", 200)):
        status, _, _ = _request(srv, "POST", "/api/product/milk/change", body,
                                {"X-Prodseg-Token": TOKEN, "Origin": origin})
        assert status == expected, origin
    assert len(session.changes) == 1
