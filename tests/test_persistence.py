"""Write-ahead log and recovery. Contract §4 (expiry across restarts) and §7."""

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from kvhelpers import (I64_MIN, MISSING, NOT_FOUND, SUCCESS, U64_MAX, assert_error, assert_json,
                       compact_len, kv_path, ordered, ordered_loads, read_wal_records, wait_until,
                       wal_record_line)

SAMPLE = {
    "str": "hello",
    "uni": "héllo 日本 😀",
    "empty": "",
    "int": 42,
    "u64": U64_MAX,
    "i64": I64_MIN,
    "float": 0.1,
    "tiny": 1e-300,
    "t": True,
    "f": False,
    "nil": None,
    "arr": [1, [2, [3]], {"x": None}],
    "obj": {"zeta": 1, "alpha": {"m": 2, "b": [3]}, "mid": "x"},
    "with space/and:colon": "key chars",
}


def load_sample(server):
    for k, v in SAMPLE.items():
        server.set_ok(k, v)


def check_sample(server):
    for k, v in SAMPLE.items():
        r = server.get_kv(k)
        assert_json(r, 200, {"value": v})
        assert ordered_loads(r.text) == ordered({"value": v}), f"member order lost for {k!r}"
    assert server.keys() == sorted(SAMPLE, key=lambda s: s.encode())
    assert server.stats() == {"keys": len(SAMPLE), "size_bytes": sum(compact_len(v) for v in SAMPLE.values())}


def write_wal(server, lines, trailing_newline=True):
    server.data_dir.mkdir(parents=True, exist_ok=True)
    text = "\n".join(l if isinstance(l, str) else wal_record_line(l) for l in lines)
    if trailing_newline:
        text += "\n"
    server.wal_path.write_bytes(text.encode("utf-8"))
    return text.encode("utf-8")


# --------------------------------------------------------------- restarts

def test_data_survives_graceful_restart(server):
    load_sample(server)
    server.restart()
    check_sample(server)


def test_data_survives_kill_9(server):
    load_sample(server)
    server.crash_restart()
    check_sample(server)


def test_deletes_persist(server):
    server.set_ok("keep", 1)
    server.set_ok("drop", 2)
    assert_json(server.delete_kv("drop"), 200, SUCCESS)
    server.restart()
    server.assert_absent("drop")
    server.assert_value("keep", 1)
    assert server.keys() == ["keep"]
    server.crash_restart()
    server.assert_absent("drop")
    assert server.stats() == {"keys": 1, "size_bytes": 1}


def test_overwrites_persist_last_value(server):
    for i in range(20):
        server.set_ok("counter", i)
    server.set_ok("shape", [1])
    server.set_ok("shape", {"now": "object"})
    server.crash_restart()
    server.assert_value("counter", 19)
    server.assert_value("shape", {"now": "object"})
    assert server.stats() == {"keys": 2, "size_bytes": 2 + len('{"now":"object"}')}


def test_multiple_restarts_accumulate(server):
    server.set_ok("gen1", 1)
    server.restart()
    server.set_ok("gen2", 2)
    server.crash_restart()
    server.set_ok("gen3", 3)
    assert_json(server.delete_kv("gen1"), 200, SUCCESS)
    server.restart()
    assert server.keys() == ["gen2", "gen3"]
    server.assert_value("gen2", 2)
    server.assert_value("gen3", 3)


def test_data_dir_is_created_if_missing(server_factory, tmp_path):
    s = server_factory(data_dir=tmp_path / "deep" / "nested" / "dir")
    assert not s.data_dir.exists()
    s.start()
    s.set_ok("k", "v")
    assert s.wal_path.is_file()
    s.restart()
    s.assert_value("k", "v")


def test_batch_writes_survive_restart(server):
    r = server.batch([{"op": "set", "key": "a", "value": {"z": 1, "a": 2}},
                      {"op": "set", "key": "b", "value": [True, None]},
                      {"op": "delete", "key": "b"},
                      {"op": "set", "key": "c", "value": "c", "ttl": 600}])
    assert_json(r, 200, {"results": [SUCCESS, SUCCESS, SUCCESS, SUCCESS]})
    server.crash_restart()
    r = server.get_kv("a")
    assert ordered_loads(r.text) == ordered({"value": {"z": 1, "a": 2}})
    server.assert_absent("b")
    server.assert_value("c", "c")
    server.restart()
    assert server.keys() == ["a", "c"]


@pytest.mark.parametrize("mode", ["always", "interval", "never"])
def test_fsync_modes_persist_across_graceful_restart(server_factory, mode):
    s = server_factory()
    s.start(["--fsync", mode])
    for i in range(10):
        s.set_ok(f"k{i}", i)
    s.restart()
    for i in range(10):
        s.assert_value(f"k{i}", i)


# --------------------------------------------------------------- WAL format

def test_wal_file_format_set_and_delete(server):
    t_before = time.time()
    server.set_ok("k1", {"b": 1, "a": [1, 2]})
    server.set_ok("k2", "v", ttl=60)
    assert_json(server.delete_kv("k1"), 200, SUCCESS)
    t_after = time.time()
    raw = server.wal_path.read_bytes()
    assert raw.endswith(b"\n"), "every WAL record is newline-terminated"
    lines = [l for l in raw.decode("utf-8").split("\n") if l.strip()]
    assert len(lines) == 3, lines
    recs = [json.loads(l) for l in lines]
    assert all(isinstance(r, dict) for r in recs)

    s1, s2, d1 = recs
    assert s1["op"] == "set" and s1["key"] == "k1"
    assert ordered_loads(lines[0]) and dict(ordered_loads(lines[0]))["value"] == ordered({"b": 1, "a": [1, 2]})
    assert "ttl" not in s1, "ttl must only be written when given"
    assert s2["op"] == "set" and s2["key"] == "k2" and s2["value"] == "v" and s2["ttl"] == 60
    assert type(s2["ttl"]) is int
    assert d1["op"] == "delete" and d1["key"] == "k1"
    assert "value" not in d1

    for rec in recs:
        ts = rec["timestamp"]
        assert type(ts) in (int, float), f"timestamp must be a JSON number, got {ts!r}"
        # unix seconds, millisecond precision: within the request window (+-2 ms)
        assert t_before - 0.002 <= ts <= t_after + 0.002, (ts, t_before, t_after)
        assert abs(ts * 1000 - round(ts * 1000)) < 0.01, f"timestamp {ts!r} is finer than milliseconds"
    assert s1["timestamp"] <= s2["timestamp"] <= d1["timestamp"]


def test_acknowledged_write_is_already_in_wal(server):
    for i in range(20):
        server.set_ok(f"w{i}", i)
        recs = server.wal_records()
        assert recs[-1]["key"] == f"w{i}" and recs[-1]["value"] == i and recs[-1]["op"] == "set"
    assert_json(server.delete_kv("w3"), 200, SUCCESS)
    recs = server.wal_records()
    assert recs[-1]["op"] == "delete" and recs[-1]["key"] == "w3"


def test_write_is_in_wal_before_any_reader_sees_it(server):
    """A reader that observes a value must find it in the WAL file already."""
    n = 40
    stop = threading.Event()
    violations = []
    seen = set()

    def reader():
        sess = requests.Session()
        while not stop.is_set() and len(seen) < n:
            r = sess.get(server.url("/kv"), timeout=10)
            keys = r.json()["keys"]
            fresh = [k for k in keys if k not in seen]
            if fresh:
                on_disk = {rec.get("key") for rec in read_wal_records(server.wal_path)}
                for k in fresh:
                    if k not in on_disk:
                        violations.append(k)
                    seen.add(k)
        sess.close()

    with ThreadPoolExecutor(4) as ex:
        readers = [ex.submit(reader) for _ in range(3)]
        writer_sess = requests.Session()
        for i in range(n):
            r = writer_sess.put(server.url(kv_path(f"r{i:02d}")), data='{"value": 1}', timeout=10)
            assert r.status_code == 200
        wait_until(lambda: len(seen) >= n, timeout=10, message="readers to see every key")
        stop.set()
        for f in readers:
            f.result()
    assert not violations, f"keys visible to readers before being in the WAL: {violations}"


def test_delete_of_missing_key_writes_nothing(server):
    server.set_ok("present", 1)
    before = server.wal_path.read_bytes()
    assert_json(server.delete_kv("absent"), 404, NOT_FOUND)
    assert_json(server.batch([{"op": "delete", "key": "absent"}]), 200, {"results": [NOT_FOUND]})
    assert server.wal_path.read_bytes() == before


def test_rejected_requests_write_nothing(server):
    server.set_ok("present", 1)
    before = server.wal_path.read_bytes()
    assert_error(server.put(kv_path("x"), data="{}"), 400)
    assert_error(server.put(kv_path("x"), data='{"value":1,"ttl":0}'), 400)
    assert_error(server.batch([{"op": "set", "key": "y", "value": 1}, {"op": "bogus", "key": "y"}]), 400)
    assert server.wal_path.read_bytes() == before


# --------------------------------------------------------------- replay of hand-written WALs

def test_hand_written_wal_replays(server_factory):
    s = server_factory()
    now = time.time()
    write_wal(s, [
        {"op": "set", "key": "int_ts", "value": 1, "timestamp": int(now) - 5},
        {"op": "set", "key": "frac_ts", "value": "x", "timestamp": round(now - 4.5, 3)},
        '{"op": "set", "key": "ttl_null", "value": [1, 2], "ttl": null, "timestamp": %d}' % int(now),
        '{"seq": 9, "op": "set", "note": "extra members", "key": "extra", "value": {"b": 1, "a": 2}, '
        '"timestamp": %d, "who": {"x": 1}}' % int(now),
        "",
        {"op": "set", "key": "gone", "value": True, "timestamp": int(now)},
        {"op": "delete", "key": "gone", "timestamp": int(now)},
        "",
        "",
        {"op": "set", "key": "ow", "value": "old", "timestamp": int(now)},
        {"op": "set", "key": "ow", "value": "new", "timestamp": now},
        {"op": "set", "key": "with_ttl", "value": 7, "ttl": 3600, "timestamp": now - 10},
        {"op": "delete", "key": "never-existed", "timestamp": now},
        {"op": "set", "key": "big", "value": U64_MAX, "timestamp": now},
    ])
    s.start()
    assert s.keys() == ["big", "extra", "frac_ts", "int_ts", "ow", "ttl_null", "with_ttl"]
    s.assert_value("int_ts", 1)
    s.assert_value("frac_ts", "x")
    s.assert_value("ttl_null", [1, 2])
    r = s.get_kv("extra")
    assert ordered_loads(r.text) == ordered({"value": {"b": 1, "a": 2}})
    s.assert_absent("gone")
    s.assert_value("ow", "new")
    s.assert_value("with_ttl", 7)
    s.assert_value("big", U64_MAX)
    # new writes append after the hand-written content and everything survives
    s.set_ok("after", "replay")
    s.restart()
    s.assert_value("after", "replay")
    s.assert_value("extra", {"b": 1, "a": 2})
    assert len(s.keys()) == 8


def test_replay_drops_sets_whose_ttl_has_passed(server_factory):
    s = server_factory()
    now = time.time()
    write_wal(s, [
        {"op": "set", "key": "expired_int", "value": 1, "ttl": 5, "timestamp": int(now) - 100},
        {"op": "set", "key": "expired_frac", "value": 2, "ttl": 1, "timestamp": now - 1.5},
        {"op": "set", "key": "alive", "value": 3, "ttl": 3600, "timestamp": now - 100},
        {"op": "set", "key": "forever", "value": 4, "timestamp": now - 10 ** 6},
        # an old expired set overwritten by a live one
        {"op": "set", "key": "revived", "value": "old", "ttl": 1, "timestamp": now - 50},
        {"op": "set", "key": "revived", "value": "new", "timestamp": now - 40},
        # a live set overwritten by an expired one: absent
        {"op": "set", "key": "superseded", "value": "live", "timestamp": now - 50},
        {"op": "set", "key": "superseded", "value": "short", "ttl": 2, "timestamp": now - 40},
    ])
    s.start()
    assert s.keys() == ["alive", "forever", "revived"]
    s.assert_absent("expired_int")
    s.assert_absent("expired_frac")
    s.assert_absent("superseded")
    s.assert_value("revived", "new")
    assert s.stats() == {"keys": 3, "size_bytes": 1 + 1 + 3}


def test_replayed_ttl_expires_at_timestamp_plus_ttl(server_factory):
    """Expiry is write time + ttl from the WAL, not restart time + ttl."""
    s = server_factory()
    wall_written = time.time() - 1.0
    write_wal(s, [{"op": "set", "key": "k", "value": "v", "ttl": 3, "timestamp": round(wall_written, 3)},
                  {"op": "set", "key": "long", "value": "w", "ttl": 3600, "timestamp": round(wall_written, 3)}])
    s.start()
    s.assert_value("long", "w")
    expires_wall = wall_written + 3
    # Every read must agree with expiry at timestamp + ttl (within the
    # tolerances below): a slow start only leaves fewer reads that see the key.
    while True:
        began = time.time()
        r = s.get_kv("k")
        ended = time.time()
        if r.status_code == 404:
            assert_json(r, 404, NOT_FOUND)
            break
        assert_json(r, 200, {"value": "v"})
        assert began <= expires_wall + 1.5, "key outlived timestamp + ttl"
        time.sleep(0.02)
    assert ended >= expires_wall - 0.2, f"key expired {expires_wall - ended:.2f}s early"


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "kill9"])
def test_expiry_survives_restart_exactly(server, crash):
    t0 = time.monotonic()
    server.set_ok("ttl3", "short-lived", ttl=3)
    server.set_ok("perm", "p")
    server.set_ok("ttl3600", "long-lived", ttl=3600)
    # restart about one second after the write
    while time.monotonic() < t0 + 1.0:
        time.sleep(0.01)
    server.crash_restart() if crash else server.restart()
    # A key with a ttl survives the restart whatever its length...
    server.assert_value("ttl3600", "long-lived")
    # ...and every read after it must agree with expiry at write time + 3 s
    # (within the tolerances below); a slow restart only leaves fewer reads
    # that see the key.
    while True:
        began = time.monotonic()
        r = server.get_kv("ttl3")
        ended = time.monotonic()
        if r.status_code == 404:
            assert_json(r, 404, NOT_FOUND)
            break
        assert_json(r, 200, {"value": "short-lived"})
        assert began - t0 <= 3 + 1.5, "key outlived its ttl across a restart (ttl restarted?)"
        time.sleep(0.02)
    assert ended - t0 >= 3 - 0.2, f"key expired {3 - (ended - t0):.2f}s early"
    server.assert_value("perm", "p")


# --------------------------------------------------------------- torn / corrupt WALs

TORN_FRAGMENTS = [
    pytest.param('{"op":"set","key":"x","va', id="fragment-no-newline"),
    pytest.param('{"op":"set","key":"x","va\n', id="fragment-with-newline"),
    pytest.param('{"op":"set","key":"x","value":"almost","timestamp":1700000000', id="missing-brace"),
    pytest.param('{"op":"del', id="short-fragment"),
]


@pytest.mark.parametrize("fragment", TORN_FRAGMENTS)
def test_torn_last_line_is_dropped_and_cut_off(server_factory, fragment):
    s = server_factory()
    now = time.time()
    good = write_wal(s, [
        {"op": "set", "key": "a", "value": 1, "timestamp": now},
        {"op": "set", "key": "b", "value": {"q": [1]}, "timestamp": now},
    ])
    s.wal_path.write_bytes(good + fragment.encode())
    s.start()
    assert s.keys() == ["a", "b"]
    s.assert_absent("x")
    err = s.stderr().lower()
    assert "warn" in err or "torn" in err, f"expected a warning on stderr, got:\n{s.stderr()}"
    # later writes work and the fragment is gone from the file
    s.set_ok("y", "after torn")
    content = s.wal_path.read_bytes()
    assert fragment.strip().encode() not in content
    assert content.startswith(good), "the good prefix must be kept byte for byte"
    recs = read_wal_records(s.wal_path)  # every line parses now
    assert [r["key"] for r in recs][-1] == "y"
    s.restart()
    assert s.keys() == ["a", "b", "y"]
    s.assert_value("y", "after torn")
    s.assert_value("b", {"q": [1]})


def test_final_record_without_newline_is_kept(server_factory):
    s = server_factory()
    now = time.time()
    write_wal(s, [
        {"op": "set", "key": "first", "value": 1, "timestamp": now},
        {"op": "set", "key": "last", "value": "no newline", "timestamp": now},
    ], trailing_newline=False)
    original = s.wal_path.read_bytes()
    assert not original.endswith(b"\n")
    s.start()
    s.assert_value("last", "no newline")
    s.set_ok("next", 2)
    content = s.wal_path.read_bytes()
    assert content.startswith(original + b"\n"), "a newline must be added before the next record"
    assert content.endswith(b"\n")
    recs = read_wal_records(s.wal_path)
    assert [r["key"] for r in recs] == ["first", "last", "next"]
    s.restart()
    assert s.keys() == ["first", "last", "next"]
    s.assert_value("last", "no newline")


@pytest.mark.parametrize("bad_line", [
    pytest.param("this is not json", id="garbage"),
    pytest.param('{"op":"set","key":"x","va', id="fragment"),
])
def test_corrupt_line_in_middle_refuses_to_start(server_factory, bad_line):
    s = server_factory()
    now = time.time()
    lines = [wal_record_line({"op": "set", "key": f"key{i}", "value": "v" * (i + 3), "timestamp": now})
             for i in range(6)]
    lines.append(bad_line)                                                             # line 7
    lines.append(wal_record_line({"op": "set", "key": "after", "value": 1, "timestamp": now}))
    content = ("\n".join(lines) + "\n").encode()
    s.data_dir.mkdir(parents=True)
    s.wal_path.write_bytes(content)
    offset = sum(len(l.encode()) + 1 for l in lines[:6])
    mtime = s.wal_path.stat().st_mtime_ns

    rc, err = s.run_to_exit()
    assert rc != 0, f"server must refuse to start on a corrupt WAL, stderr:\n{err}"
    assert s.wal_path.read_bytes() == content, "the WAL must be left untouched"
    assert s.wal_path.stat().st_mtime_ns == mtime
    assert "wal.log" in err, f"stderr must name the file:\n{err}"
    # numbers inside the temporary path (pytest-NN) must not count as a match
    clean = err.replace(str(s.data_dir), "<DATA_DIR>")
    assert re.search(r"(?<![\d.])7(?![\d.])", clean), f"stderr must name line 7:\n{err}"
    assert re.search(rf"(?<![\d.]){offset}(?![\d.])", clean), f"stderr must name byte offset {offset}:\n{err}"
    assert "panicked" not in err
    # and it keeps refusing, still without touching the file
    rc2, _ = s.run_to_exit()
    assert rc2 != 0 and s.wal_path.read_bytes() == content


def test_corrupt_first_line_refuses_to_start(server_factory):
    s = server_factory()
    now = time.time()
    content = ("garbage{\n" + wal_record_line({"op": "set", "key": "a", "value": 1, "timestamp": now}) + "\n").encode()
    s.data_dir.mkdir(parents=True)
    s.wal_path.write_bytes(content)
    rc, err = s.run_to_exit()
    assert rc != 0
    assert s.wal_path.read_bytes() == content
    assert "wal.log" in err


@pytest.mark.parametrize("content", [
    pytest.param(b"", id="empty-file"),
    pytest.param(b"\n\n\n", id="blank-lines-only"),
    pytest.param(b'{"op":"se', id="only-a-fragment"),
])
def test_degenerate_wal_files_start_empty(server_factory, content):
    s = server_factory()
    s.data_dir.mkdir(parents=True)
    s.wal_path.write_bytes(content)
    s.start()
    assert s.stats() == {"keys": 0, "size_bytes": 0}
    s.set_ok("k", "v")
    assert b'{"op":"se\n' not in s.wal_path.read_bytes() and not s.wal_path.read_bytes().startswith(b'{"op":"se{')
    assert [r["key"] for r in read_wal_records(s.wal_path)] == ["k"]
    s.restart()
    s.assert_value("k", "v")


def test_large_value_survives_restart(server):
    big = {"blob": "é" * (2 * 1024 * 1024), "list": list(range(10000))}
    assert_json(server.put_kv("big", big, timeout=60), 200, SUCCESS)
    server.crash_restart()
    server.assert_value("big", big)
    assert server.stats() == {"keys": 1, "size_bytes": compact_len(big)}


# --------------------------------------------------------------- crash consistency

def test_kill_9_during_concurrent_writes_keeps_every_acknowledged_write(server):
    n_threads = 8
    stop = threading.Event()
    lock = threading.Lock()
    acked_count = [0]

    def writer(tid):
        sess = requests.Session()
        acked, sent = {}, set()
        last_ctr_acked, last_ctr_sent = -1, -1
        i = 0
        while not stop.is_set():
            key = f"t{tid}-{i:05d}"
            value = {"t": tid, "i": i}
            sent.add(key)
            try:
                r = sess.put(server.url(kv_path(key)), data=json.dumps({"value": value}), timeout=5)
            except requests.RequestException:
                break
            if r.status_code != 200:
                break
            acked[key] = value
            # an overwritten counter per thread
            last_ctr_sent = i
            try:
                r = sess.put(server.url(kv_path(f"ctr-{tid}")), data=json.dumps({"value": i}), timeout=5)
            except requests.RequestException:
                break
            if r.status_code != 200:
                break
            last_ctr_acked = i
            with lock:
                acked_count[0] += 1
            i += 1
        sess.close()
        return acked, sent, last_ctr_acked, last_ctr_sent

    with ThreadPoolExecutor(n_threads) as ex:
        futs = [ex.submit(writer, t) for t in range(n_threads)]
        wait_until(lambda: acked_count[0] >= 300, timeout=8, message="300 acknowledged writes")
        server.kill()
        stop.set()
        results = [f.result() for f in futs]

    server.start()
    keys = set(server.keys())
    all_sent = set()
    for tid, (acked, sent, ctr_acked, ctr_sent) in enumerate(results):
        all_sent |= sent
        all_sent.add(f"ctr-{tid}")
        for k, v in acked.items():
            assert k in keys, f"acknowledged write {k!r} lost after kill -9"
        # spot-check values (all of them would be slow-ish; every 10th)
        for k in sorted(acked)[::10]:
            server.assert_value(k, acked[k])
        if ctr_acked >= 0:
            v = server.value_of(f"ctr-{tid}")
            assert v is not MISSING and ctr_acked <= v <= ctr_sent, (tid, v, ctr_acked, ctr_sent)
    assert keys <= all_sent, f"keys that were never sent appeared: {sorted(keys - all_sent)[:10]}"


@pytest.mark.parametrize("cut", ["drop-last-record", "torn-last-record", "first-record-only"])
def test_partial_batch_at_end_of_wal_is_all_or_nothing(server, cut):
    """Simulate a crash in the middle of writing a batch: keep only a prefix of
    the WAL bytes the batch produced (whatever their format). After restart,
    none of the batch may be applied."""
    server.set_ok("before", "b")
    size_before = server.wal_size()
    r = server.batch([{"op": "set", "key": f"batch{i}", "value": {"i": i, "pad": "x" * 20}} for i in range(4)]
                     + [{"op": "delete", "key": "before"}])
    assert_json(r, 200, {"results": [SUCCESS] * 5})
    server.stop()
    full = server.wal_path.read_bytes()
    prefix, batch_bytes = full[:size_before], full[size_before:]
    batch_lines = batch_bytes.split(b"\n")
    if batch_lines and batch_lines[-1] == b"":
        batch_lines.pop()
    assert batch_lines, "the batch wrote nothing to the WAL"
    if len(batch_lines) == 1 or cut == "torn-last-record":
        # every complete line but the last, then half of the last one
        partial = b"".join(l + b"\n" for l in batch_lines[:-1]) + batch_lines[-1][: len(batch_lines[-1]) // 2]
    elif cut == "drop-last-record":
        partial = b"".join(l + b"\n" for l in batch_lines[:-1])
    else:
        partial = batch_lines[0] + b"\n"
    server.wal_path.write_bytes(prefix + partial)
    server.start()
    assert server.keys() == ["before"], "a batch cut short by a crash must be applied entirely or not at all"
    server.assert_value("before", "b")
    # the server keeps working and the next restart is clean
    server.set_ok("later", 1)
    server.restart()
    assert server.keys() == ["before", "later"]


def test_complete_batch_in_wal_replays_fully_after_kill(server):
    server.batch([{"op": "set", "key": "x", "value": 0}, {"op": "set", "key": "y", "value": 0}])
    for i in range(1, 30):
        r = server.batch([{"op": "set", "key": "x", "value": i}, {"op": "set", "key": "y", "value": i}])
        assert_json(r, 200, {"results": [SUCCESS, SUCCESS]})
    server.crash_restart()
    server.assert_value("x", 29)
    server.assert_value("y", 29)
