"""Concurrent access. Contract §6 (batch isolation), §7 (WAL order) and the
spec's thread-safety requirement: no lost updates, no torn reads, no 5xx."""

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from kvhelpers import (MISSING, NOT_FOUND, SUCCESS, assert_json, compact_len, kv_path,
                       wait_until)


class Client:
    """A per-thread HTTP client that records every status code it sees."""

    def __init__(self, server):
        self.server = server
        self.sess = requests.Session()
        self.statuses = Counter()

    def _do(self, method, path, **kw):
        kw.setdefault("timeout", 10)
        r = self.sess.request(method, self.server.url(path), **kw)
        self.statuses[r.status_code] += 1
        assert r.status_code < 500, f"{method} {path} -> {r.status_code} {r.text[:300]}"
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
        return r

    def put(self, key, value, ttl=MISSING):
        body = {"value": value}
        if ttl is not MISSING:
            body["ttl"] = ttl
        return self._do("PUT", kv_path(key), data=json.dumps(body))

    def get(self, key):
        return self._do("GET", kv_path(key))

    def delete(self, key):
        return self._do("DELETE", kv_path(key))

    def batch(self, ops):
        return self._do("POST", "/kv/batch", json={"operations": ops})

    def keys(self, prefix=None):
        return self._do("GET", "/kv", params=None if prefix is None else {"prefix": prefix}).json()["keys"]

    def stats(self):
        return self._do("GET", "/stats").json()

    def close(self):
        self.sess.close()


def run_parallel(server, n, fn, *args):
    """Run fn(client, index, *args) in n threads; return results; no 5xx allowed."""
    def wrap(i):
        c = Client(server)
        try:
            return fn(c, i, *args)
        finally:
            c.close()
    with ThreadPoolExecutor(n) as ex:
        return [f.result() for f in [ex.submit(wrap, i) for i in range(n)]]


def test_concurrent_puts_distinct_keys(server):
    def work(c, t):
        out = {}
        for i in range(40):
            k = f"t{t:02d}:k{i:02d}"
            v = {"t": t, "i": i, "s": "x" * (i % 7)}
            assert_json(c.put(k, v), 200, SUCCESS)
            out[k] = v
        return out

    results = run_parallel(server, 16, work)
    expected = {k: v for d in results for k, v in d.items()}
    assert server.keys() == sorted(expected)
    assert server.stats() == {"keys": len(expected), "size_bytes": sum(compact_len(v) for v in expected.values())}
    for k in list(expected)[::17]:
        server.assert_value(k, expected[k])


def test_concurrent_puts_same_key_last_writer_wins_consistently(server):
    def work(c, t):
        written = []
        for i in range(30):
            v = {"writer": t, "i": i, "pad": "p" * t}
            assert_json(c.put("hot", v), 200, SUCCESS)
            written.append(v)
        return written

    results = run_parallel(server, 12, work)
    all_written = [v for w in results for v in w]
    final = server.value_of("hot")
    assert final in all_written
    # the final value must be the last write of the writer that produced it
    assert final == results[final["writer"]][-1]
    assert server.stats() == {"keys": 1, "size_bytes": compact_len(final)}
    assert server.keys() == ["hot"]


def test_readers_never_see_torn_or_foreign_values(server):
    allowed = [{"gen": g, "blob": [g] * 50, "text": f"value-{g}" * 20} for g in range(10)]
    server.set_ok("shared", allowed[0])
    stop = threading.Event()

    def writer(c, t):
        rnd = random.Random(t)
        n = 0
        while not stop.is_set():
            assert_json(c.put("shared", rnd.choice(allowed)), 200, SUCCESS)
            n += 1
        return n

    def reader(c, t):
        n = 0
        while not stop.is_set():
            r = c.get("shared")
            assert r.status_code == 200
            assert r.json()["value"] in allowed, r.text[:200]
            n += 1
        return n

    with ThreadPoolExecutor(8) as ex:
        fw = [ex.submit(lambda i=i: writer(Client(server), i)) for i in range(3)]
        fr = [ex.submit(lambda i=i: reader(Client(server), i)) for i in range(5)]
        time.sleep(2.0)  # load duration, not synchronisation
        stop.set()
        writes = sum(f.result() for f in fw)
        reads = sum(f.result() for f in fr)
    assert writes > 10 and reads > 10


def test_concurrent_deletes_exactly_one_succeeds(server):
    keys = [f"del{i}" for i in range(20)]
    for k in keys:
        server.set_ok(k, k)
    barrier = threading.Barrier(10)

    def work(c, t):
        barrier.wait(timeout=10)
        outcomes = {}
        for k in keys:
            r = c.delete(k)
            if r.status_code == 200:
                assert r.json() == SUCCESS
            else:
                assert_json(r, 404, NOT_FOUND)
            outcomes[k] = r.status_code
        return outcomes

    results = run_parallel(server, 10, work)
    for k in keys:
        wins = sum(1 for o in results if o[k] == 200)
        assert wins == 1, f"{k!r} deleted successfully {wins} times"
    assert server.stats() == {"keys": 0, "size_bytes": 0}
    assert server.keys() == []


def test_concurrent_mixed_operations_final_state(server):
    """Each thread owns its keys and runs a deterministic random script of
    put/delete/get; the final state must equal the union of each thread's model."""
    def work(c, t):
        rnd = random.Random(1000 + t)
        model = {}
        for _ in range(80):
            k = f"own{t}:{rnd.randrange(8)}"
            op = rnd.random()
            if op < 0.5:
                v = rnd.choice([rnd.randrange(10 ** 6), "s" * rnd.randrange(30), [1, {"a": t}], None, True])
                assert_json(c.put(k, v), 200, SUCCESS)
                model[k] = v
            elif op < 0.8:
                r = c.delete(k)
                if k in model:
                    assert_json(r, 200, SUCCESS)
                    del model[k]
                else:
                    assert_json(r, 404, NOT_FOUND)
            else:
                r = c.get(k)
                if k in model:
                    assert_json(r, 200, {"value": model[k]})
                else:
                    assert_json(r, 404, NOT_FOUND)
        return model

    models = run_parallel(server, 12, work)
    expected = {k: v for m in models for k, v in m.items()}
    assert server.keys() == sorted(expected)
    for k, v in expected.items():
        server.assert_value(k, v)
    assert server.stats() == {"keys": len(expected), "size_bytes": sum(compact_len(v) for v in expected.values())}


def test_batches_are_isolated_from_batch_readers(server):
    """A writer sets k1 and k2 to the same value in one batch, repeatedly;
    readers fetching both in one batch must always see them equal."""
    server.batch([{"op": "set", "key": "k1", "value": 0}, {"op": "set", "key": "k2", "value": 0}])
    stop = threading.Event()
    mismatches = []

    def writer(c, t):
        i = 0
        while not stop.is_set():
            i += 1
            v = f"w{t}-{i}"
            r = c.batch([{"op": "set", "key": "k1", "value": v},
                         {"op": "set", "key": "k2", "value": v}])
            assert_json(r, 200, {"results": [SUCCESS, SUCCESS]})
        return i

    def reader(c, t):
        n = 0
        while not stop.is_set():
            r = c.batch([{"op": "get", "key": "k1"}, {"op": "get", "key": "k2"}])
            res = r.json()["results"]
            if res[0] != res[1]:
                mismatches.append(res)
            n += 1
        return n

    with ThreadPoolExecutor(6) as ex:
        fw = [ex.submit(lambda i=i: writer(Client(server), i)) for i in range(2)]
        fr = [ex.submit(lambda i=i: reader(Client(server), i)) for i in range(4)]
        time.sleep(2.0)
        stop.set()
        w = sum(f.result() for f in fw)
        n = sum(f.result() for f in fr)
    assert w > 10 and n > 10
    assert not mismatches, f"{len(mismatches)} torn batch reads, e.g. {mismatches[:3]}"
    assert server.value_of("k1") == server.value_of("k2")


def test_batches_are_isolated_from_listing_and_stats(server):
    """A writer alternately creates and deletes 5 keys in single batches;
    GET /kv and /stats must see either all 5 or none."""
    server.set_ok("base", "b")
    group = [f"grp:{i}" for i in range(5)]
    stop = threading.Event()
    bad = []

    def writer(c, t):
        n = 0
        while not stop.is_set():
            r = c.batch([{"op": "set", "key": k, "value": "v"} for k in group])
            assert r.status_code == 200
            r = c.batch([{"op": "delete", "key": k} for k in group])
            assert_json(r, 200, {"results": [SUCCESS] * 5})
            n += 1
        return n

    def reader(c, t):
        n = 0
        while not stop.is_set():
            keys = c.keys(prefix="grp:")
            if keys not in ([], group):
                bad.append(("list", keys))
            st = c.stats()
            if st not in ({"keys": 1, "size_bytes": 1}, {"keys": 6, "size_bytes": 1 + 5}):
                bad.append(("stats", st))
            n += 1
        return n

    with ThreadPoolExecutor(5) as ex:
        fw = ex.submit(lambda: writer(Client(server), 0))
        fr = [ex.submit(lambda i=i: reader(Client(server), i)) for i in range(4)]
        time.sleep(2.0)
        stop.set()
        assert fw.result() > 5
        assert sum(f.result() for f in fr) > 10
    assert not bad, f"partial batch observed: {bad[:5]}"


def test_overlapping_batches_in_opposite_order_do_not_deadlock(server):
    def work(c, t):
        for i in range(40):
            v = f"{t}-{i}"
            pair = [{"op": "set", "key": "x", "value": v}, {"op": "set", "key": "y", "value": v}]
            if t % 2:
                pair.reverse()
            r = c.batch(pair + [{"op": "get", "key": "x"}, {"op": "get", "key": "y"}])
            assert_json(r, 200, {"results": [SUCCESS, SUCCESS, {"value": v}, {"value": v}]})
        return True

    # A deadlock shows as requests that time out (HTTP_TIMEOUT), not as a hang.
    assert all(run_parallel(server, 8, work))
    assert server.value_of("x") == server.value_of("y")


def test_stats_consistent_after_concurrent_resizing(server):
    def work(c, t):
        rnd = random.Random(t)
        last = {}
        for i in range(50):
            k = f"sz{t}:{i % 5}"
            v = "é" * rnd.randrange(0, 40) if rnd.random() < 0.5 else list(range(rnd.randrange(0, 10)))
            assert_json(c.put(k, v), 200, SUCCESS)
            last[k] = v
        return last

    results = run_parallel(server, 10, work)
    expected = {k: v for d in results for k, v in d.items()}
    assert server.stats() == {"keys": len(expected), "size_bytes": sum(compact_len(v) for v in expected.values())}


def test_state_after_concurrent_writes_equals_state_after_restart(server):
    """The WAL order must match the order in which writes were applied in memory."""
    def work(c, t):
        rnd = random.Random(77 + t)
        for i in range(60):
            k = f"contended{rnd.randrange(6)}"
            if rnd.random() < 0.8:
                assert c.put(k, {"t": t, "i": i}).status_code == 200
            else:
                assert c.delete(k).status_code in (200, 404)
            if i % 10 == 0:
                assert c.batch([{"op": "set", "key": "contended0", "value": [t, i]},
                                {"op": "delete", "key": f"contended{rnd.randrange(1, 6)}"}]).status_code == 200
        return True

    run_parallel(server, 10, work)
    before = {k: server.value_of(k) for k in server.keys()}
    stats_before = server.stats()
    server.restart()
    after = {k: server.value_of(k) for k in server.keys()}
    assert after == before
    assert server.stats() == stats_before
    server.crash_restart()
    assert {k: server.value_of(k) for k in server.keys()} == before


def test_many_simultaneous_connections(server):
    barrier = threading.Barrier(48)

    def work(c, t):
        barrier.wait(timeout=10)
        assert_json(c.put(f"conn{t}", t), 200, SUCCESS)
        assert_json(c.get(f"conn{t}"), 200, {"value": t})
        return c.statuses

    statuses = run_parallel(server, 48, work)
    assert all(set(s) == {200} for s in statuses)
    assert server.stats()["keys"] == 48


def test_no_5xx_under_mixed_load_with_errors_and_ttl(server):
    """Hammer every endpoint (including invalid requests and ttl keys) in parallel;
    every response is JSON and none is a 5xx."""
    def work(c, t):
        rnd = random.Random(t)
        for i in range(60):
            k = f"m{rnd.randrange(20)}"
            choice = rnd.randrange(8)
            if choice == 0:
                c.put(k, i, ttl=1)
            elif choice == 1:
                c.put(k, {"i": i})
            elif choice == 2:
                c.get(k)
            elif choice == 3:
                c.delete(k)
            elif choice == 4:
                c.keys(prefix="m1")
            elif choice == 5:
                c.stats()
            elif choice == 6:
                c.batch([{"op": "set", "key": k, "value": i}, {"op": "get", "key": k},
                         {"op": "delete", "key": k}])
            else:
                r = c._do("PUT", kv_path(k), data="{not json")
                assert r.status_code == 400
        return c.statuses

    counters = run_parallel(server, 12, work)
    total = sum(counters, Counter())
    assert total and all(code < 500 for code in total)
    assert server.stats()["keys"] == len(server.keys())


def test_concurrent_ttl_writes_all_expire(server):
    def work(c, t):
        for i in range(20):
            assert_json(c.put(f"ttl{t}:{i}", i, ttl=1), 200, SUCCESS)
        return True

    run_parallel(server, 8, work)
    server.set_ok("keeper", 1)
    wait_until(lambda: server.stats() == {"keys": 1, "size_bytes": 1}, timeout=1 + 5,
               message="all ttl keys to expire")
    assert server.keys() == ["keeper"]
