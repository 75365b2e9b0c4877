"""CRUD: GET / PUT / DELETE on /kv/{key}, listing and stats basics.

Contract §1 (exact bodies), §2 (keys), §3 (values), §5 (stats)."""

import json

import pytest

from kvhelpers import (I64_MAX, I64_MIN, NOT_FOUND, SUCCESS, U64_MAX, assert_error,
                       assert_json, compact_len, kv_path, ordered, ordered_loads, raw_http)


def test_put_then_get_exact_bodies(server):
    r = server.put_kv("greeting", "hello world")
    assert_json(r, 200, {"success": True})
    r = server.get_kv("greeting")
    assert_json(r, 200, {"value": "hello world"})


def test_get_missing_key_is_404_json(server):
    r = server.get_kv("nope")
    assert_json(r, 404, {"error": "key not found"})


def test_overwrite_replaces_value(server):
    server.set_ok("k", "first")
    server.set_ok("k", {"second": [2]})
    server.assert_value("k", {"second": [2]})
    assert server.keys() == ["k"]
    assert server.stats()["keys"] == 1


def test_delete_existing_key(server):
    server.set_ok("doomed", 123)
    r = server.delete_kv("doomed")
    assert_json(r, 200, {"success": True})
    server.assert_absent("doomed")
    assert server.keys() == []


def test_delete_missing_key_is_404(server):
    r = server.delete_kv("never-set")
    assert_json(r, 404, {"error": "key not found"})


def test_delete_twice_second_is_404(server):
    server.set_ok("once", "x")
    assert_json(server.delete_kv("once"), 200, SUCCESS)
    assert_json(server.delete_kv("once"), 404, NOT_FOUND)


def test_delete_then_put_again(server):
    server.set_ok("phoenix", 1)
    assert_json(server.delete_kv("phoenix"), 200, SUCCESS)
    server.set_ok("phoenix", 2)
    server.assert_value("phoenix", 2)


ROUND_TRIP_VALUES = [
    pytest.param("hello", id="string"),
    pytest.param("", id="empty-string"),
    pytest.param("héllo wörld", id="latin1-unicode"),
    pytest.param("日本語のテキスト", id="cjk"),
    pytest.param("emoji 😀🚀 and ZWJ 👩‍💻", id="emoji"),
    pytest.param("quote\" backslash\\ slash/ newline\n tab\t cr\r", id="escapes"),
    pytest.param("nul\u0000byte and \u001f control", id="control-chars"),
    pytest.param(0, id="zero"),
    pytest.param(42, id="int"),
    pytest.param(-17, id="negative-int"),
    pytest.param(U64_MAX, id="u64-max"),
    pytest.param(I64_MIN, id="i64-min"),
    pytest.param(I64_MAX, id="i64-max"),
    pytest.param(0.1, id="float-0.1"),
    pytest.param(1e-300, id="float-1e-300"),
    pytest.param(1.7976931348623157e308, id="float-max"),
    pytest.param(-2.5, id="negative-float"),
    pytest.param(1.0, id="float-1.0"),
    pytest.param(123456.789, id="float-123456.789"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(None, id="null"),
    pytest.param([], id="empty-array"),
    pytest.param({}, id="empty-object"),
    pytest.param([1, "two", 3.5, None, True, [False], {"x": []}], id="mixed-array"),
    pytest.param({"name": "Alice", "age": 30, "tags": ["a", "b"], "nested": {"deep": {"deeper": [1, {"z": None}]}}},
                 id="nested-object"),
    pytest.param({"big": U64_MAX, "small": I64_MIN, "f": 0.1}, id="numbers-in-object"),
]


@pytest.mark.parametrize("value", ROUND_TRIP_VALUES)
def test_value_round_trips_exactly(server, value):
    assert_json(server.put_kv("v", value), 200, SUCCESS)
    r = server.get_kv("v")
    assert_json(r, 200, {"value": value})
    # also the raw text, with object member order significant
    assert ordered_loads(r.text) == ordered({"value": value})


def test_deeply_nested_value_round_trips(server):
    value = "leaf"
    for depth in range(50):
        value = {"d": depth, "child": [value]} if depth % 2 else [depth, value]
    server.set_ok("deep", value)
    server.assert_value("deep", value)


def test_object_member_order_is_preserved(server):
    value = {"zebra": 1, "apple": 2, "mango": {"y": 1, "b": 2, "a": [{"q": 1, "c": 2}]}, "banana": 3}
    # send the text by hand so the order on the wire is exactly this
    body = '{"value": {"zebra": 1, "apple": 2, "mango": {"y": 1, "b": 2, "a": [{"q": 1, "c": 2}]}, "banana": 3}}'
    assert_json(server.put(kv_path("ordered"), data=body), 200, SUCCESS)
    r = server.get_kv("ordered")
    assert_json(r, 200, {"value": value})
    got = r.json()["value"]
    assert list(got.keys()) == ["zebra", "apple", "mango", "banana"]
    assert list(got["mango"].keys()) == ["y", "b", "a"]
    assert list(got["mango"]["a"][0].keys()) == ["q", "c"]
    assert ordered_loads(r.text) == ordered({"value": value})


def test_null_value_is_stored_and_distinct_from_missing(server):
    assert_json(server.put_kv("nothing", None), 200, SUCCESS)
    r = server.get_kv("nothing")
    assert_json(r, 200, {"value": None})
    assert server.keys() == ["nothing"]
    assert server.stats() == {"keys": 1, "size_bytes": 4}


def test_missing_value_member_is_400_and_nothing_stored(server):
    r = server.put(kv_path("k"), data=json.dumps({"ttl": 10}))
    assert_error(r, 400)
    r = server.put(kv_path("k"), data="{}")
    assert_error(r, 400)
    server.assert_absent("k")
    assert server.stats() == {"keys": 0, "size_bytes": 0}


def test_missing_value_does_not_clobber_existing_key(server):
    server.set_ok("k", "keep me")
    assert_error(server.put(kv_path("k"), data='{"vaule": 1}'), 400)
    server.assert_value("k", "keep me")


def test_put_without_content_type_is_accepted(server):
    r = server.put(kv_path("plain"), data=json.dumps({"value": {"a": [1, 2]}}))
    assert "Content-Type" not in r.request.headers
    assert_json(r, 200, SUCCESS)
    server.assert_value("plain", {"a": [1, 2]})


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"])
def test_put_with_non_json_content_type_is_parsed_as_json(server, ctype):
    r = server.put(kv_path("ct"), data=b'{"value":"x"}', headers={"Content-Type": ctype})
    assert_json(r, 200, SUCCESS)
    server.assert_value("ct", "x")


@pytest.mark.parametrize("body", [
    pytest.param(b"not json", id="garbage"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b'{"value": 1', id="truncated"),
    pytest.param(b'{"value": 1} trailing', id="trailing-garbage"),
    pytest.param(b'[1, 2]', id="array"),
    pytest.param(b'"value"', id="string"),
    pytest.param(b'42', id="number"),
    pytest.param(b'null', id="null"),
    pytest.param(b'\xff\xfe{"value":1}', id="invalid-utf8"),
])
def test_bad_put_body_is_400_and_nothing_stored(server, body):
    r = server.put(kv_path("bad"), data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    server.assert_absent("bad")
    assert server.stats() == {"keys": 0, "size_bytes": 0}


def test_unknown_members_in_put_body_are_ignored(server):
    r = server.put(kv_path("extra"), data='{"value": [1], "color": "blue", "meta": {"x": 1}}')
    assert_json(r, 200, SUCCESS)
    server.assert_value("extra", [1])


def test_list_keys_exact_body(server):
    assert_json(server.get("/kv"), 200, {"keys": []})
    for k in ["b", "a", "c"]:
        server.set_ok(k, k)
    assert_json(server.get("/kv"), 200, {"keys": ["a", "b", "c"]})


def test_stats_empty_store(server):
    assert_json(server.get("/stats"), 200, {"keys": 0, "size_bytes": 0})


@pytest.mark.parametrize("value,size", [
    pytest.param("hello", 5, id="ascii-string"),
    pytest.param("héllo", 6, id="utf8-string"),
    pytest.param("日本", 6, id="cjk-string"),
    pytest.param("😀", 4, id="emoji-string"),
    pytest.param("", 0, id="empty-string"),
    pytest.param('a"b\n', 4, id="string-with-escapes"),
    pytest.param(42, 2, id="int"),
    pytest.param(-7, 2, id="negative-int"),
    pytest.param(U64_MAX, 20, id="u64-max"),
    pytest.param(True, 4, id="true"),
    pytest.param(False, 5, id="false"),
    pytest.param(None, 4, id="null"),
    pytest.param({"a": 1}, 7, id="object"),
    pytest.param([1, 2], 5, id="array"),
    pytest.param({"a": [1, 2], "b": {"c": None}}, 26, id="nested"),
])
def test_stats_size_bytes_per_value(server, value, size):
    assert compact_len(value) == size  # sanity of the expectation itself
    # a long key: keys must not be counted
    server.set_ok("a-rather-long-key-that-must-not-be-counted", value)
    assert_json(server.get("/stats"), 200, {"keys": 1, "size_bytes": size})


def test_stats_size_uses_compact_json_even_if_sent_with_spaces(server):
    body = '{ "value" : { "a" : [ 1 , 2 ] ,\n  "b" : { "c" : null } } }'
    assert_json(server.put(kv_path("spacy"), data=body), 200, SUCCESS)
    assert server.stats() == {"keys": 1, "size_bytes": len('{"a":[1,2],"b":{"c":null}}')}


def test_stats_track_overwrite_and_delete(server):
    server.set_ok("a", "hello")          # 5
    server.set_ok("b", [1, 2])           # 5
    server.set_ok("c", True)             # 4
    assert server.stats() == {"keys": 3, "size_bytes": 14}
    server.set_ok("a", "héllo")          # 5 -> 6
    assert server.stats() == {"keys": 3, "size_bytes": 15}
    server.set_ok("b", {"a": 1})         # 5 -> 7
    assert server.stats() == {"keys": 3, "size_bytes": 17}
    assert_json(server.delete_kv("c"), 200, SUCCESS)
    assert server.stats() == {"keys": 2, "size_bytes": 13}
    assert_json(server.delete_kv("c"), 404, NOT_FOUND)
    assert server.stats() == {"keys": 2, "size_bytes": 13}
    assert_json(server.delete_kv("a"), 200, SUCCESS)
    assert_json(server.delete_kv("b"), 200, SUCCESS)
    assert server.stats() == {"keys": 0, "size_bytes": 0}


def test_many_keys_all_readable(server):
    expected = {f"key-{i:03d}": {"i": i, "sq": i * i} for i in range(100)}
    for k, v in expected.items():
        server.set_ok(k, v)
    for k, v in expected.items():
        server.assert_value(k, v)
    assert server.keys() == sorted(expected)
    assert server.stats() == {"keys": 100, "size_bytes": sum(compact_len(v) for v in expected.values())}


def test_get_does_not_modify_anything(server):
    server.set_ok("g", "v")
    before = server.wal_path.read_bytes()
    for _ in range(5):
        server.assert_value("g", "v")
        server.assert_absent("missing")
    server.keys()
    server.stats()
    assert server.wal_path.read_bytes() == before


# ---------------------------------------------------------------- keys (§2)

def test_slash_in_key_encoded_and_raw_name_the_same_key(server):
    st, _, data = raw_http(server.port, "PUT", "/kv/a/b", b'{"value":"raw path"}')
    assert st == 200 and json.loads(data) == SUCCESS
    st, hdrs, data = raw_http(server.port, "GET", "/kv/a%2Fb")
    assert st == 200 and json.loads(data) == {"value": "raw path"}
    assert hdrs["content-type"].startswith("application/json")
    st, _, data = raw_http(server.port, "PUT", "/kv/a%2fb", b'{"value":"encoded"}')
    assert st == 200
    st, _, data = raw_http(server.port, "GET", "/kv/a/b")
    assert st == 200 and json.loads(data) == {"value": "encoded"}
    assert server.keys() == ["a/b"]
    st, _, data = raw_http(server.port, "DELETE", "/kv/a%2Fb")
    assert st == 200 and json.loads(data) == SUCCESS
    st, _, data = raw_http(server.port, "GET", "/kv/a/b")
    assert st == 404 and json.loads(data) == NOT_FOUND


SPECIAL_KEYS = [
    pytest.param("with space", id="space"),
    pytest.param("user:42", id="colon"),
    pytest.param("what?", id="question-mark"),
    pytest.param("a?b=c&d=e", id="query-like"),
    pytest.param("hash#tag", id="hash"),
    pytest.param("100%", id="percent"),
    pytest.param("%41", id="percent-literal-escape"),
    pytest.param("plus+sign", id="plus"),
    pytest.param("ключ", id="cyrillic"),
    pytest.param("日本語", id="cjk"),
    pytest.param("🔑", id="emoji"),
    pytest.param("dots..and/../slashes", id="dot-segments"),
    pytest.param("tab\tand\nnewline", id="control"),
    pytest.param("  leading and trailing  ", id="surrounding-spaces"),
    pytest.param("'quotes\"and\\backslash", id="quotes"),
]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_percent_encoded_special_keys(server, key):
    server.set_ok(key, {"k": key})
    server.assert_value(key, {"k": key})
    assert server.keys() == [key]
    assert_json(server.delete_kv(key), 200, SUCCESS)
    server.assert_absent(key)


def test_plus_in_path_is_literal_not_space(server):
    st, _, _ = raw_http(server.port, "PUT", "/kv/a+b", b'{"value":1}')
    assert st == 200
    assert server.keys() == ["a+b"]
    server.assert_absent("a b")
    server.assert_value("a+b", 1)


def test_batch_is_an_ordinary_key_for_get_put_delete(server):
    assert_json(server.get("/kv/batch"), 404, NOT_FOUND)
    assert_json(server.put("/kv/batch", data='{"value": {"not": "a batch"}}'), 200, SUCCESS)
    assert_json(server.get("/kv/batch"), 200, {"value": {"not": "a batch"}})
    assert server.keys() == ["batch"]
    assert server.stats() == {"keys": 1, "size_bytes": len('{"not":"a batch"}')}
    # the batch endpoint still works and sees the ordinary key
    r = server.batch([{"op": "get", "key": "batch"}])
    assert_json(r, 200, {"results": [{"value": {"not": "a batch"}}]})
    assert_json(server.delete("/kv/batch"), 200, SUCCESS)
    assert_json(server.get("/kv/batch"), 404, NOT_FOUND)
    assert_json(server.delete("/kv/batch"), 404, NOT_FOUND)


def test_key_of_exactly_max_length_is_accepted(server):
    key = "k" * 1024
    server.set_ok(key, 1)
    server.assert_value(key, 1)
    multibyte = "é" * 512  # 1024 bytes in UTF-8
    server.set_ok(multibyte, 2)
    server.assert_value(multibyte, 2)


def test_key_over_default_limit_is_400(server):
    assert_error(server.put_kv("k" * 1025, 1), 400)
    assert_error(server.put_kv("é" * 513, 1), 400)  # 1026 bytes, 513 characters
    assert server.stats() == {"keys": 0, "size_bytes": 0}
    assert_error(server.get_kv("k" * 1025), 400)
    assert_error(server.delete_kv("k" * 1025), 400)
