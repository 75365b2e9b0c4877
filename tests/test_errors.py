"""Error responses: always JSON {"error": ...}. Contract §1, §2 (key validation), §3 (body limit)."""

import json

import pytest
import requests

from kvhelpers import (NOT_FOUND, SUCCESS, assert_error, assert_json, assert_raw_error, kv_path,
                       raw_http)


@pytest.mark.parametrize("path", ["/", "/nope", "/kvx", "/stats/extra", "/statistics", "/kv-batch",
                                  "/api/kv/x", "/favicon.ico"])
def test_unknown_path_is_404_json(server, path):
    r = server.get(path)
    assert_error(r, 404)


@pytest.mark.parametrize("method,path", [
    ("POST", "/stats"),
    ("PUT", "/stats"),
    ("DELETE", "/stats"),
    ("POST", "/kv"),
    ("PUT", "/kv"),
    ("DELETE", "/kv"),
    ("POST", "/kv/some-key"),
    ("PATCH", "/kv/some-key"),
    ("PATCH", "/kv/batch"),
])
def test_wrong_method_is_405_json(server, method, path):
    r = server.request(method, path, data=b'{"value": 1}')
    assert_error(r, 405)
    # and nothing was written
    assert server.stats() == {"keys": 0, "size_bytes": 0}


def test_connection_keeps_working_after_errors(server):
    """Errors are answered, not dropped: the same keep-alive session goes on."""
    sess = requests.Session()
    for _ in range(3):
        assert_error(sess.get(server.url("/nope"), timeout=10), 404)
        assert_error(sess.put(server.url("/kv/k"), data=b"{bad", timeout=10), 400)
        assert_error(sess.post(server.url("/stats"), timeout=10), 405)
        assert_json(sess.put(server.url("/kv/k"), data=b'{"value":1}', timeout=10), 200, SUCCESS)
    sess.close()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_empty_key_is_400(server, method):
    body = b'{"value": 1}' if method == "PUT" else None
    assert_raw_error(raw_http(server.port, method, "/kv/", body), 400)
    assert server.stats() == {"keys": 0, "size_bytes": 0}


@pytest.mark.parametrize("path", ["/kv/%ZZ", "/kv/abc%", "/kv/abc%4", "/kv/%G1x"])
def test_invalid_percent_encoding_is_400(server, path):
    assert_raw_error(raw_http(server.port, "GET", path), 400)
    assert_raw_error(raw_http(server.port, "PUT", path, b'{"value": 1}'), 400)
    assert server.stats() == {"keys": 0, "size_bytes": 0}


@pytest.mark.parametrize("path", ["/kv/%FF", "/kv/abc%C3%28", "/kv/%ED%A0%80", "/kv/%C0%AF"])
def test_invalid_utf8_in_key_is_400(server, path):
    assert_raw_error(raw_http(server.port, "PUT", path, b'{"value": 1}'), 400)
    assert_raw_error(raw_http(server.port, "GET", path), 400)
    assert server.stats() == {"keys": 0, "size_bytes": 0}


def test_configured_max_key_bytes(server_factory):
    s = server_factory()
    s.start(["--max-key-bytes", "8"])
    s.set_ok("12345678", "eight")
    assert_error(s.put_kv("123456789", "nine"), 400)
    assert_error(s.put_kv("ééééé", "ten bytes"), 400)
    s.set_ok("éééé", "eight bytes")
    assert_error(s.get_kv("123456789"), 400)
    assert s.keys() == ["12345678", "éééé"]


# ------------------------------------------------------------------ body limit

def _body_of_size(n: int) -> bytes:
    """A valid PUT body of exactly n bytes."""
    skeleton = b'{"value":""}'
    assert n >= len(skeleton)
    return b'{"value":"' + b"x" * (n - len(skeleton)) + b'"}'


def test_body_at_limit_accepted_over_limit_413(server_factory):
    s = server_factory()
    s.start(["--max-body-bytes", "1000"])
    ok = _body_of_size(1000)
    assert len(ok) == 1000
    assert_json(s.put(kv_path("at-limit"), data=ok), 200, SUCCESS)
    s.assert_value("at-limit", "x" * (1000 - 12))
    too_big = _body_of_size(1001)
    assert_error(s.put(kv_path("over"), data=too_big), 413)
    s.assert_absent("over")
    assert_error(s.put(kv_path("way-over"), data=_body_of_size(50_000)), 413)
    s.assert_absent("way-over")
    assert s.keys() == ["at-limit"]


def test_body_limit_applies_to_batch(server_factory):
    s = server_factory()
    s.start(["--max-body-bytes", "1000"])
    ops = [{"op": "set", "key": f"k{i}", "value": "y" * 50} for i in range(30)]
    body = json.dumps({"operations": ops}).encode()
    assert len(body) > 1000
    assert_error(s.post("/kv/batch", data=body, headers={"Content-Type": "application/json"}), 413)
    assert s.keys() == []
    small = {"operations": [{"op": "set", "key": "k", "value": 1}]}
    assert_json(s.post("/kv/batch", json=small), 200, {"results": [SUCCESS]})


def test_body_limit_applies_to_chunked_bodies(server_factory):
    s = server_factory()
    s.start(["--max-body-bytes", "1000"])
    payload = _body_of_size(3000)

    def chunks():
        for i in range(0, len(payload), 500):
            yield payload[i:i + 500]

    r = s.put(kv_path("chunked"), data=chunks())
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(r, 413)
    s.assert_absent("chunked")
    small = _body_of_size(200)
    r = s.put(kv_path("chunked-ok"), data=iter([small[:100], small[100:]]))
    assert_json(r, 200, SUCCESS)


def test_default_body_limit_is_16_mib(server):
    limit = 16 * 1024 * 1024
    big_ok = _body_of_size(limit - 1024)
    assert_json(server.put(kv_path("big"), data=big_ok, timeout=60), 200, SUCCESS)
    assert server.stats() == {"keys": 1, "size_bytes": limit - 1024 - 12}
    too_big = _body_of_size(limit + 1)
    try:
        r = server.put(kv_path("too-big"), data=too_big, timeout=60)
    except requests.ConnectionError as e:
        pytest.fail(f"server dropped the connection instead of answering 413: {e!r}")
    assert_error(r, 413)
    server.assert_absent("too-big")
    assert server.stats()["keys"] == 1


# ------------------------------------------------------------------ JSON everywhere

def test_every_error_is_json_with_error_member(server):
    cases = [
        server.get("/missing-route"),
        server.get_kv("missing-key"),
        server.delete_kv("missing-key"),
        server.put(kv_path("k"), data=b"nope"),
        server.put(kv_path("k"), data=b'{"value": 1, "ttl": 0}'),
        server.post("/kv/batch", data=b"{}"),
        server.post("/kv/batch", json={"operations": [{"op": "x", "key": "k"}]}),
        server.request("PATCH", "/kv/k"),
    ]
    for r in cases:
        assert r.status_code >= 400
        assert_error(r, r.status_code)
    assert cases[1].json() == NOT_FOUND and cases[2].json() == NOT_FOUND
