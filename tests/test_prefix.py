"""GET /kv and GET /kv?prefix=P. Contract §5."""

import json

import pytest

from kvhelpers import SUCCESS, assert_json, raw_http, utf8_sorted, wait_until

KEYS = ["user:1", "user:10", "user:2", "User:3", "users", "user", "config:app", "a", "B", "0", "~tilde",
        "é-accent", "日本", "😀", "user: spaced", "a b", "a+b", "a/b", "100%", "#hash", "z"]


def load(server):
    for k in KEYS:
        server.set_ok(k, k)


def test_keys_sorted_in_ascending_byte_order(server):
    load(server)
    r = server.get("/kv")
    assert_json(r, 200, {"keys": utf8_sorted(KEYS)})
    # byte order: uppercase before lowercase, ASCII before any multi-byte character
    keys = r.json()["keys"]
    assert keys.index("B") < keys.index("a") < keys.index("z") < keys.index("~tilde") < keys.index("é-accent")
    assert keys.index("user:1") < keys.index("user:10") < keys.index("user:2")


def test_prefix_filters_keys(server):
    load(server)
    assert_json(server.get("/kv", params={"prefix": "user:"}), 200,
                {"keys": ["user: spaced", "user:1", "user:10", "user:2"]})
    assert_json(server.get("/kv", params={"prefix": "user"}), 200,
                {"keys": ["user", "user: spaced", "user:1", "user:10", "user:2", "users"]})
    assert_json(server.get("/kv", params={"prefix": "user:1"}), 200, {"keys": ["user:1", "user:10"]})
    # a whole key is a prefix of itself; prefix matching is case sensitive and not a substring search
    assert_json(server.get("/kv", params={"prefix": "users"}), 200, {"keys": ["users"]})
    assert_json(server.get("/kv", params={"prefix": "USER"}), 200, {"keys": []})
    assert_json(server.get("/kv", params={"prefix": "ser"}), 200, {"keys": []})
    assert_json(server.get("/kv", params={"prefix": "nomatch"}), 200, {"keys": []})


def test_empty_or_absent_prefix_lists_everything(server):
    load(server)
    everything = {"keys": utf8_sorted(KEYS)}
    assert_json(server.get("/kv"), 200, everything)
    assert_json(server.get("/kv", params={"prefix": ""}), 200, everything)
    st, hdrs, body = raw_http(server.port, "GET", "/kv?prefix=")
    assert st == 200 and hdrs["content-type"].startswith("application/json")


@pytest.mark.parametrize("prefix,expected", [
    pytest.param("a ", ["a b"], id="space"),
    pytest.param("a+", ["a+b"], id="plus"),
    pytest.param("a/", ["a/b"], id="slash"),
    pytest.param("100%", ["100%"], id="percent"),
    pytest.param("#", ["#hash"], id="hash"),
    pytest.param("é", ["é-accent"], id="accent"),
    pytest.param("日", ["日本"], id="cjk"),
    pytest.param("😀", ["😀"], id="emoji"),
    pytest.param("user: ", ["user: spaced"], id="colon-space"),
])
def test_prefix_with_special_characters(server, prefix, expected):
    load(server)
    assert_json(server.get("/kv", params={"prefix": prefix}), 200, {"keys": expected})


def test_prefix_matches_by_bytes_of_decoded_prefix(server):
    # "é" is C3 A9; "\u00c3" is C3 83 - a byte-level prefix of neither
    for k in ["é1", "é2", "\u00c31", "e1"]:
        server.set_ok(k, 1)
    assert_json(server.get("/kv", params={"prefix": "é"}), 200, {"keys": ["é1", "é2"]})
    st, _, body = raw_http(server.port, "GET", "/kv?prefix=%C3%A9")
    assert st == 200 and body and json.loads(body) == {"keys": ["é1", "é2"]}


def test_listing_reflects_deletes_and_expiry(server):
    server.set_ok("p:keep", 1)
    server.set_ok("p:del", 2)
    server.set_ok("p:ttl", 3, ttl=1)
    assert_json(server.get("/kv", params={"prefix": "p:"}), 200, {"keys": ["p:del", "p:keep", "p:ttl"]})
    assert_json(server.delete_kv("p:del"), 200, SUCCESS)
    assert_json(server.get("/kv", params={"prefix": "p:"}), 200, {"keys": ["p:keep", "p:ttl"]})
    wait_until(lambda: server.keys(prefix="p:") == ["p:keep"], timeout=1 + 5, message="ttl key to leave listing")
    server.assert_absent("p:ttl")
