"""POST /kv/batch. Contract §6."""

import json

import pytest

from kvhelpers import (NOT_FOUND, SUCCESS, U64_MAX, assert_error, assert_json, compact_len, ordered,
                       ordered_loads)


def test_spec_example(server):
    r = server.batch([
        {"op": "set", "key": "user:1", "value": "Alice", "ttl": 300},
        {"op": "get", "key": "user:1"},
        {"op": "delete", "key": "user:2"},
    ])
    assert_json(r, 200, {"results": [{"success": True}, {"value": "Alice"}, {"error": "key not found"}]})
    server.assert_value("user:1", "Alice")


def test_results_per_operation_type(server):
    server.set_ok("existing", "e")
    r = server.batch([
        {"op": "get", "key": "existing"},
        {"op": "get", "key": "missing"},
        {"op": "set", "key": "new", "value": [1, 2]},
        {"op": "delete", "key": "existing"},
        {"op": "delete", "key": "missing"},
    ])
    assert_json(r, 200, {"results": [{"value": "e"}, NOT_FOUND, SUCCESS, SUCCESS, NOT_FOUND]})
    server.assert_absent("existing")
    server.assert_value("new", [1, 2])
    assert server.stats() == {"keys": 1, "size_bytes": 5}


def test_get_sees_earlier_writes_in_same_batch(server):
    server.set_ok("pre", "old")
    r = server.batch([
        {"op": "get", "key": "pre"},
        {"op": "set", "key": "pre", "value": "new"},
        {"op": "get", "key": "pre"},
        {"op": "delete", "key": "pre"},
        {"op": "get", "key": "pre"},
        {"op": "delete", "key": "pre"},
        {"op": "set", "key": "fresh", "value": None},
        {"op": "get", "key": "fresh"},
        {"op": "set", "key": "fresh", "value": {"b": 2, "a": 1}},
        {"op": "get", "key": "fresh"},
    ])
    body = assert_json(r, 200, {"results": [
        {"value": "old"}, SUCCESS, {"value": "new"}, SUCCESS, NOT_FOUND, NOT_FOUND,
        SUCCESS, {"value": None}, SUCCESS, {"value": {"b": 2, "a": 1}},
    ]})
    assert list(body["results"][9]["value"].keys()) == ["b", "a"]
    assert server.keys() == ["fresh"]
    server.assert_value("fresh", {"b": 2, "a": 1})


def test_empty_operations(server):
    r = server.post("/kv/batch", json={"operations": []})
    assert_json(r, 200, {"results": []})


@pytest.mark.parametrize("body", [
    pytest.param(b"{}", id="operations-missing"),
    pytest.param(b'{"operations": null}', id="operations-null"),
    pytest.param(b'{"operations": {"op": "get", "key": "a"}}', id="operations-object"),
    pytest.param(b'{"operations": "set"}', id="operations-string"),
    pytest.param(b'{"operations": 3}', id="operations-number"),
    pytest.param(b'[{"op": "get", "key": "a"}]', id="body-array"),
    pytest.param(b'"operations"', id="body-string"),
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b'{"operations": [', id="truncated"),
    pytest.param(b"", id="empty-body"),
])
def test_malformed_batch_body_is_400(server, body):
    server.set_ok("a", 1)
    r = server.post("/kv/batch", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert server.stats() == {"keys": 1, "size_bytes": 1}


BAD_OPS = [
    pytest.param({"op": "incr", "key": "n"}, id="unknown-op"),
    pytest.param({"op": "SET", "key": "n", "value": 1}, id="op-wrong-case"),
    pytest.param({"key": "n", "value": 1}, id="op-missing"),
    pytest.param({"op": 1, "key": "n"}, id="op-not-string"),
    pytest.param({"op": "get"}, id="get-key-missing"),
    pytest.param({"op": "delete", "key": ""}, id="delete-empty-key"),
    pytest.param({"op": "set", "key": 5, "value": 1}, id="key-not-string"),
    pytest.param({"op": "set", "key": None, "value": 1}, id="key-null"),
    pytest.param({"op": "set", "key": "n"}, id="set-value-missing"),
    pytest.param({"op": "set", "key": "n", "value": 1, "ttl": 0}, id="ttl-zero"),
    pytest.param({"op": "set", "key": "n", "value": 1, "ttl": -5}, id="ttl-negative"),
    pytest.param({"op": "set", "key": "n", "value": 1, "ttl": 1.5}, id="ttl-fraction"),
    pytest.param({"op": "set", "key": "n", "value": 1, "ttl": "10"}, id="ttl-string"),
    pytest.param({"op": "set", "key": "n", "value": 1, "ttl": 315360001}, id="ttl-too-big"),
    pytest.param("set", id="op-not-object"),
    pytest.param(None, id="op-null"),
]


@pytest.mark.parametrize("bad", BAD_OPS)
def test_invalid_operation_rejects_whole_batch(server, bad):
    server.set_ok("pre", "original")
    wal_before = server.wal_path.read_bytes()
    r = server.batch([
        {"op": "set", "key": "new0", "value": "should not exist"},
        {"op": "delete", "key": "pre"},
        bad,
        {"op": "set", "key": "new3", "value": 3},
    ])
    assert_error(r, 400, contains="operations[2]")
    server.assert_absent("new0")
    server.assert_absent("new3")
    server.assert_value("pre", "original")
    assert server.stats() == {"keys": 1, "size_bytes": len("original")}
    assert server.wal_path.read_bytes() == wal_before, "a rejected batch must write nothing"


def test_error_names_the_first_bad_index(server):
    r = server.batch([{"op": "get", "key": "a"}] * 5 + [{"op": "frobnicate", "key": "a"}])
    assert_error(r, 400, contains="operations[5]")
    r = server.batch([{"op": "nope", "key": "a"}])
    assert_error(r, 400, contains="operations[0]")


def test_delete_missing_key_in_batch(server):
    r = server.batch([{"op": "delete", "key": "ghost"}])
    assert_json(r, 200, {"results": [{"error": "key not found"}]})


def test_batch_values_round_trip_all_types(server):
    values = ["s", "", "ü😀", 0, -1, U64_MAX, 0.1, 1e-300, True, False, None, [], {},
              {"z": [1, {"y": None}], "a": "b"}]
    ops = [{"op": "set", "key": f"v{i:02d}", "value": v} for i, v in enumerate(values)]
    ops += [{"op": "get", "key": f"v{i:02d}"} for i in range(len(values))]
    r = server.batch(ops)
    assert_json(r, 200, {"results": [SUCCESS] * len(values) + [{"value": v} for v in values]})
    assert ordered_loads(r.text) == ordered({"results": [SUCCESS] * len(values) + [{"value": v} for v in values]})
    for i, v in enumerate(values):
        server.assert_value(f"v{i:02d}", v)
    assert server.stats() == {"keys": len(values), "size_bytes": sum(compact_len(v) for v in values)}


def test_duplicate_sets_last_one_wins(server):
    r = server.batch([{"op": "set", "key": "d", "value": i} for i in range(10)])
    assert_json(r, 200, {"results": [SUCCESS] * 10})
    server.assert_value("d", 9)
    assert server.stats() == {"keys": 1, "size_bytes": 1}


def test_batch_unknown_members_ignored(server):
    r = server.post("/kv/batch", data=json.dumps({
        "operations": [{"op": "set", "key": "k", "value": 1, "comment": "hi"},
                       {"op": "get", "key": "k", "value": "ignored for get"}],
        "transaction": "ignored",
    }))
    assert_json(r, 200, {"results": [SUCCESS, {"value": 1}]})


def test_batch_keys_with_special_characters(server):
    keys = ["a/b", "with space", "q?x#y", "100%", "ключ", "batch"]
    r = server.batch([{"op": "set", "key": k, "value": k} for k in keys])
    assert_json(r, 200, {"results": [SUCCESS] * len(keys)})
    for k in keys:
        server.assert_value(k, k)
    assert server.keys() == sorted(keys, key=lambda s: s.encode())


def test_default_batch_limit_of_10000_operations(server):
    ops = [{"op": "set", "key": f"k{i}", "value": i} for i in range(10000)]
    r = server.batch(ops, timeout=60)
    body = assert_json(r, 200)
    assert len(body["results"]) == 10000 and all(x == SUCCESS for x in body["results"])
    assert server.stats()["keys"] == 10000
    r = server.batch([{"op": "get", "key": "k1"}] * 10001, timeout=60)
    assert_error(r, (400, 413))


def test_configured_batch_limit(server_factory):
    s = server_factory()
    s.start(["--max-batch-ops", "3"])
    r = s.batch([{"op": "set", "key": f"k{i}", "value": i} for i in range(3)])
    assert_json(r, 200, {"results": [SUCCESS] * 3})
    r = s.batch([{"op": "set", "key": f"x{i}", "value": i} for i in range(4)])
    assert_error(r, (400, 413))
    assert s.keys() == ["k0", "k1", "k2"]


def test_batch_key_over_limit_is_rejected(server):
    server.set_ok("pre", 1)
    r = server.batch([{"op": "set", "key": "ok", "value": 1},
                      {"op": "set", "key": "k" * 1025, "value": 1}])
    assert_error(r, 400)
    server.assert_absent("ok")
    assert server.keys() == ["pre"]
