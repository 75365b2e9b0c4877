"""TTL and expiry. Contract §3 (ttl validation, replace-on-overwrite) and §4."""

import time

import pytest

from kvhelpers import (MISSING, NOT_FOUND, SUCCESS, assert_error, assert_json, kv_path,
                       wait_until)

# Slack for scheduling/HTTP latency when checking when a key disappears.
EARLY = 0.2
LATE = 1.5


def put_timed(server, key, value, ttl=MISSING):
    """PUT and return (t_sent, t_acked) in time.monotonic()."""
    t0 = time.monotonic()
    assert_json(server.put_kv(key, value, ttl), 200, SUCCESS)
    return t0, time.monotonic()


def poll_until_absent(server, key, timeout):
    """Poll GET until 404. Returns monotonic time at which the 404 request was sent.
    Every response before that must be the stored value (200)."""
    deadline = time.monotonic() + timeout
    while True:
        t = time.monotonic()
        r = server.get_kv(key)
        if r.status_code == 404:
            assert_json(r, 404, NOT_FOUND)
            return t
        assert r.status_code == 200, r.text
        if t > deadline:
            raise AssertionError(f"key {key!r} still present {timeout}s later")
        time.sleep(0.02)


def test_key_with_ttl_is_readable_before_expiry(server):
    server.set_ok("soon", "here", ttl=30)
    server.assert_value("soon", "here")
    assert server.keys() == ["soon"]
    assert server.stats() == {"keys": 1, "size_bytes": 4}


@pytest.mark.parametrize("ttl", [1, 2])
def test_key_expires_after_ttl(server, ttl):
    t0, t_ack = put_timed(server, "ephemeral", {"x": 1}, ttl)
    gone_at = poll_until_absent(server, "ephemeral", ttl + 5)
    assert gone_at - t0 >= ttl - EARLY, f"expired too early: {gone_at - t0:.3f}s after write (ttl {ttl})"
    assert gone_at - t_ack <= ttl + LATE, f"expired too late: {gone_at - t_ack:.3f}s after write (ttl {ttl})"


@pytest.mark.parametrize("ttl", [
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param(1.5, id="fraction"),
    pytest.param("10", id="string"),
    pytest.param(True, id="bool-true"),
    pytest.param(False, id="bool-false"),
    pytest.param([10], id="array"),
    pytest.param({"s": 10}, id="object"),
    pytest.param(315360001, id="over-max"),
    pytest.param(2 ** 64, id="huge"),
])
def test_invalid_ttl_is_400_and_nothing_stored(server, ttl):
    r = server.put_kv("fresh", "v", ttl=ttl)
    assert_error(r, 400)
    server.assert_absent("fresh")
    # an existing key is left exactly as it was (value and persistence)
    server.set_ok("existing", "old")
    wal_before = server.wal_size()
    assert_error(server.put_kv("existing", "new", ttl=ttl), 400)
    server.assert_value("existing", "old")
    assert server.stats() == {"keys": 1, "size_bytes": 3}
    assert server.wal_size() == wal_before, "a rejected PUT must not write to the WAL"


def test_ttl_max_is_accepted(server):
    server.set_ok("long-lived", 1, ttl=315360000)
    server.assert_value("long-lived", 1)


def test_ttl_null_means_no_expiry(server):
    assert_json(server.put(kv_path("forever"), data='{"value": "f", "ttl": null}'), 200, SUCCESS)
    server.set_ok("control", "c", ttl=1)
    poll_until_absent(server, "control", 1 + 5)
    server.assert_value("forever", "f")
    assert server.keys() == ["forever"]


def test_put_without_ttl_makes_key_persistent_again(server):
    server.set_ok("k", "temporary", ttl=1)
    server.set_ok("k", "permanent")            # replaces value AND ttl
    server.set_ok("control", "c", ttl=1)
    poll_until_absent(server, "control", 1 + 5)
    server.assert_value("k", "permanent")
    assert server.stats() == {"keys": 1, "size_bytes": len("permanent")}


def test_overwrite_with_longer_ttl_extends_life(server):
    server.set_ok("k", "v1", ttl=1)
    server.set_ok("k", "v2", ttl=600)
    server.set_ok("control", "c", ttl=1)
    poll_until_absent(server, "control", 1 + 5)
    server.assert_value("k", "v2")


def test_overwrite_persistent_key_with_ttl_makes_it_expire(server):
    server.set_ok("k", "forever")
    t0, t_ack = put_timed(server, "k", "now-temporary", ttl=1)
    gone_at = poll_until_absent(server, "k", 1 + 5)
    assert gone_at - t0 >= 1 - EARLY
    assert gone_at - t_ack <= 1 + LATE


def test_expired_key_is_absent_for_every_reader(server):
    server.set_ok("stay", "s")
    server.set_ok("exp:1", "gone soon", ttl=1)
    server.set_ok("exp:2", [1, 2, 3], ttl=1)
    assert server.stats() == {"keys": 3, "size_bytes": 1 + 9 + 7}
    # wait until ONE reader (stats) says they are gone, then every other reader must agree
    wait_until(lambda: server.stats()["keys"] == 1, timeout=1 + 5, message="stats to drop expired keys")
    assert server.stats() == {"keys": 1, "size_bytes": 1}
    assert_json(server.get("/kv"), 200, {"keys": ["stay"]})
    assert_json(server.get("/kv", params={"prefix": "exp:"}), 200, {"keys": []})
    server.assert_absent("exp:1")
    r = server.batch([{"op": "get", "key": "exp:2"}, {"op": "get", "key": "stay"}])
    assert_json(r, 200, {"results": [NOT_FOUND, {"value": "s"}]})
    wal_before = server.wal_size()
    assert_json(server.delete_kv("exp:2"), 404, NOT_FOUND)
    assert_json(server.delete_kv("exp:1"), 404, NOT_FOUND)
    assert server.wal_size() == wal_before, "DELETE of an expired key must write nothing"


def test_expired_key_gone_from_listing_once_get_says_404(server):
    server.set_ok("x", 1, ttl=1)
    poll_until_absent(server, "x", 1 + 5)
    assert server.keys() == []
    assert server.stats() == {"keys": 0, "size_bytes": 0}
    r = server.batch([{"op": "delete", "key": "x"}])
    assert_json(r, 200, {"results": [NOT_FOUND]})


def test_expired_key_can_be_set_again(server):
    server.set_ok("again", "first", ttl=1)
    poll_until_absent(server, "again", 1 + 5)
    server.set_ok("again", "second")
    server.assert_value("again", "second")
    assert server.stats() == {"keys": 1, "size_bytes": 6}


def test_ttl_keys_expire_independently(server):
    t0 = time.monotonic()
    server.set_ok("one", 1, ttl=1)
    server.set_ok("three", 3, ttl=3)
    gone_one = poll_until_absent(server, "one", 1 + 5)
    assert server.value_of("three") == 3, "ttl=3 key must outlive ttl=1 key"
    gone_three = poll_until_absent(server, "three", 3 + 5)
    assert gone_one - t0 >= 1 - EARLY
    assert gone_three - t0 >= 3 - EARLY
    assert gone_three - t0 <= 3 + LATE + 0.5


def test_batch_set_with_ttl_expires(server):
    t0 = time.monotonic()
    r = server.batch([{"op": "set", "key": "b1", "value": "x", "ttl": 1},
                      {"op": "set", "key": "b2", "value": "y"}])
    assert_json(r, 200, {"results": [SUCCESS, SUCCESS]})
    t_ack = time.monotonic()
    gone = poll_until_absent(server, "b1", 1 + 5)
    assert gone - t0 >= 1 - EARLY
    assert gone - t_ack <= 1 + LATE
    server.assert_value("b2", "y")


def test_batch_set_with_null_ttl_is_persistent(server):
    r = server.batch([{"op": "set", "key": "n", "value": 1, "ttl": None},
                      {"op": "set", "key": "control", "value": 2, "ttl": 1}])
    assert_json(r, 200, {"results": [SUCCESS, SUCCESS]})
    poll_until_absent(server, "control", 1 + 5)
    server.assert_value("n", 1)


def test_wal_records_ttl_only_when_given(server):
    server.set_ok("with", 1, ttl=60)
    server.set_ok("without", 2)
    recs = server.wal_records()
    by_key = {r["key"]: r for r in recs}
    assert by_key["with"]["ttl"] == 60
    assert "ttl" not in by_key["without"]


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_expired_keys_memory_is_reclaimed_without_reads(server):
    """Contract §4: memory of expired keys is given back in the background,
    not only when someone touches the keys. Nothing reads the store while we
    watch the process's resident memory."""
    rss_before = _rss_kib(server.pid)
    n, per_batch = 200_000, 5000
    t0 = time.monotonic()
    for start in range(0, n, per_batch):
        ops = [{"op": "set", "key": f"exp{i:06d}", "value": "x" * 200, "ttl": 1}
               for i in range(start, start + per_batch)]
        r = server.batch(ops, timeout=60)
        assert r.status_code == 200, r.text[:300]
    rss_full = _rss_kib(server.pid)
    growth = rss_full - rss_before
    assert growth > 20_000, f"storing {n} values should take memory (grew only {growth} KiB)"
    # no HTTP traffic from here on: only watch /proc
    # The deadline bounds a hang: the contract sets no time for giving memory back.
    deadline = t0 + 1 + 60
    while True:
        rss = _rss_kib(server.pid)
        if rss < rss_before + growth * 0.5:
            break
        assert time.monotonic() < deadline, (
            f"RSS still {rss} KiB ({rss_full} at peak, {rss_before} at start) "
            f"{time.monotonic() - t0:.1f}s after writing keys with ttl 1")
        time.sleep(0.1)
    # the last batches were written up to a few seconds after t0
    wait_until(lambda: server.stats() == {"keys": 0, "size_bytes": 0}, timeout=10,
               message="all 200000 keys to expire")


def test_expiry_is_simultaneous_for_all_readers(server):
    """Once any reader has seen an expired key gone, no reader that starts
    later may still see it (GET, listing, stats, batch get)."""
    import threading
    import requests

    server.set_ok("watched", "w", ttl=1)
    stop = threading.Event()
    observations = []  # (t_start, t_end, present, reader)
    lock = threading.Lock()

    def reader(kind):
        sess = requests.Session()
        while not stop.is_set():
            t_start = time.monotonic()
            if kind == "get":
                r = sess.get(server.url(kv_path("watched")), timeout=10)
                present = r.status_code == 200
            elif kind == "list":
                present = "watched" in sess.get(server.url("/kv"), timeout=10).json()["keys"]
            elif kind == "stats":
                present = sess.get(server.url("/stats"), timeout=10).json()["keys"] == 1
            else:
                res = sess.post(server.url("/kv/batch"), json={"operations": [{"op": "get", "key": "watched"}]},
                                timeout=10).json()["results"][0]
                present = "value" in res
            t_end = time.monotonic()
            with lock:
                observations.append((t_start, t_end, present, kind))
        sess.close()

    threads = [threading.Thread(target=reader, args=(k,)) for k in ("get", "list", "stats", "batch") * 2]
    for t in threads:
        t.start()
    wait_until(lambda: sum(1 for o in observations if not o[2]) >= 40, timeout=1 + 5,
               message="readers to observe the expiry")
    # run a little past the first absence so late "present" answers would be caught
    first_gone = min(o[1] for o in observations if not o[2])
    wait_until(lambda: time.monotonic() > first_gone + 0.3, timeout=5)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    stale = [o for o in observations if o[2] and o[0] > first_gone]
    assert not stale, f"readers still saw the key after another saw it expire: {stale[:5]}"
    kinds_gone = {o[3] for o in observations if not o[2]}
    assert kinds_gone == {"get", "list", "stats", "batch"}
