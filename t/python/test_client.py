"""The Python client (python/shoal, doc/python.md) against real shoald
processes: one node for the API, three for leader following and faults.
Run by t/python.sh (make check), which sets SHOALD and PYTHONPATH; every
process a test starts is killed by PID at the end."""

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import numpy as np
import pytest

import shoal
from shoal import shoal_pb2 as pb

SHOALD = os.environ.get("SHOALD", "shoald")
SCALE = int(os.environ.get("SHOAL_TIMEOUT_SCALE", "1"))


def _port_free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _free_base(count):
    for _ in range(200):
        b = random.randrange(1100, 3100)  # ports below the kernel's ephemeral range
        if all(_port_free((b + i) * 10 + k) for i in range(count) for k in (1, 2, 3)):
            return b
    raise RuntimeError("no free ports")


class Cluster:
    """n shoald processes on 127.0.0.1 (node i: base + i)."""

    def __init__(self, n):
        self.n, self.base = n, _free_base(n)
        self.dir = tempfile.mkdtemp(prefix="shoal-py-")
        self.procs = [None] * n
        for i in range(n):
            self.start(i)

    def addr(self, i):
        return "127.0.0.1:%d" % ((self.base + i) * 10 + 2)

    def addrs(self):
        return ",".join(self.addr(i) for i in range(self.n))

    def start(self, i):
        args = [SHOALD, "--node-name", "p%d" % i, "--node-data-dir",
                os.path.join(self.dir, "p%d" % i), "--listen-base-port", str(self.base + i)]
        if self.n > 1:
            args += ["--membership-profile", "local", "--cluster-seeds",
                     "127.0.0.1:%d" % (self.base * 10 + 1), "--cluster-bootstrap-expect",
                     str(self.n)]
            if SCALE > 1:  # the sanitizers: slower processes, scaled raft timers
                args += ["--raft-election-timeout-ms", str(400 * SCALE),
                         "--raft-heartbeat-ms", str(40 * SCALE)]
        log = open(os.path.join(self.dir, "p%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()

    def kill(self, i, sig=signal.SIGKILL):
        self.procs[i].send_signal(sig)
        if sig == signal.SIGKILL:
            self.procs[i].wait()

    def status(self, i):
        with shoal.Client(self.addr(i), timeout=2, retries=0) as c:
            return c.cluster_status()

    def leader(self, among=None, deadline_s=30):
        """The node number of the leader all of `among` agree on."""
        among = list(range(self.n)) if among is None else among
        end = time.monotonic() + deadline_s * SCALE
        while time.monotonic() < end:
            try:
                st = [self.status(i) for i in among]
                lids = {s.get("leader_id") for s in st}
                lead = [i for i, s in zip(among, st) if s.get("role") == "leader"]
                if len(lead) == 1 and len(lids) == 1 and None not in lids:
                    return lead[0]
            except shoal.ShoalError:
                pass
            time.sleep(0.05)
        raise AssertionError("no leader among %s" % among)

    def metric(self, i, name):
        import urllib.request
        url = "http://127.0.0.1:%d/metrics" % ((self.base + i) * 10 + 3)
        for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
            if line.split(" ")[0] == name:
                return float(line.split(" ")[1])
        return None

    def stop(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
        if os.environ.get("KEEP_TESTDIR") is None:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def one():
    c = Cluster(1)
    try:
        wait_ready(c.addr(0))
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def three():
    c = Cluster(3)
    try:
        c.leader()
        yield c
    finally:
        c.stop()


def wait_ready(addr):
    end = time.monotonic() + 20 * SCALE
    while True:
        try:
            with shoal.Client(addr, timeout=2, retries=0) as c:
                c.ping()
                return
        except shoal.ShoalError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def exact_top(X, q, k):
    d = ((X - q) ** 2).sum(axis=1)
    return list(np.argsort(d, kind="stable")[:k])


# ------------------------------------------------------------------ one node

def test_status_codes_match_the_protocol():
    for name, code in pb.StatusCode.items():
        if name == "OK":
            continue
        err = shoal.errors.error_for(code, "x")
        assert err.status == name and err.code == code


def test_round_trip_and_recall(one):
    c = shoal.Client(one.addr(0), timeout=60 * SCALE)
    c.create_collection("rt", dim=32, metric="l2")
    rng = np.random.default_rng(7)
    X = rng.standard_normal((10000, 32)).astype(np.float32)
    ids = np.arange(10000) + 1
    seen = []
    n = c.upsert("rt", ids, X, [{"i": int(i), "even": bool(i % 2 == 0)} for i in ids],
                 batch=1000, progress=lambda done, total: seen.append((done, total)))
    assert n == 10000 and seen[-1] == (10000, 10000) and len(seen) == 10
    assert c.count("rt") == 10000
    got = c.get("rt", [1, 5000, 10000, 424242])
    assert [p.id for p in got] == [1, 5000, 10000]
    for p in got:
        assert p.vector.dtype == np.float32 and np.array_equal(p.vector, X[p.id - 1])
        assert p.payload["i"] == p.id
    # every vector back, bit for bit, by scrolling
    back = {p.id: p.vector for p in c.scroll("rt", with_vector=True, limit=999)}
    assert len(back) == 10000
    assert all(np.array_equal(back[i], X[i - 1]) for i in range(1, 10001))
    # recall@10 against exact search, 100 queries
    Q = rng.standard_normal((100, 32)).astype(np.float32)
    hits = c.search("rt", Q, k=10, ef=100, with_payload=False)
    recall = np.mean([len({h.id - 1 for h in hs} & set(exact_top(X, q, 10))) / 10
                      for q, hs in zip(Q, hits)])
    assert recall >= 0.95, recall
    exact = c.search("rt", Q[0], k=10, exact=True, with_payload=False)
    assert [h.id - 1 for h in exact] == exact_top(X, Q[0], 10)


def test_filters(one):
    c = shoal.Client(one.addr(0))
    c.create_collection("f", dim=2)
    c.upsert("f", [1, 2, 3, 4], [[0, 0], [1, 0], [2, 0], [3, 0]],
             [{"color": "red", "n": 1}, {"color": "blue", "n": 2},
              {"color": "red", "n": 3, "meta": {"year": 2001}}, None])
    assert c.count("f", {"must": [{"key": "color", "match": {"value": "red"}}]}) == 2
    assert c.count("f", {"must": [{"key": "n", "range": {"gte": 2}}]}) == 2
    assert c.count("f", {"must_not": [{"key": "color", "match": {"any": ["red"]}}]}) == 2
    assert c.count("f", {"must": [{"key": "meta.year", "match": {"value": 2001}}]}) == 1
    assert c.count("f", {"must": [{"has_id": [1, 4]}]}) == 2
    hits = c.search("f", [3, 0], k=4, filter={"must": [{"key": "color",
                                                          "match": {"value": "red"}}]})
    assert [h.id for h in hits] == [3, 1]
    assert c.count("f", {"must": [{"is_empty": {"key": "color"}}]}) == 1
    assert c.count("f", {"must": [{"key": "color", "is_empty": True}]}) == 1
    assert c.count("f", {"must": [{"should": [{"has_id": [1]}, {"has_id": [2]}]}]}) == 2
    assert c.count("f", {"must": [{"key": "n", "match": {"value": np.int64(3)}}]}) == 1
    with pytest.raises(shoal.InvalidArgument, match=r"filter.must\[0\].range.gt: not a number"):
        c.count("f", {"must": [{"key": "n", "range": {"gt": "x"}}]})
    with pytest.raises(shoal.InvalidArgument, match="is_empty: true"):
        c.count("f", {"must": [{"key": "color", "is_empty": False}]})
    with pytest.raises(shoal.InvalidArgument, match="has_id"):
        c.count("f", {"must": [{"has_id": []}]})


def test_errors(one):
    c = shoal.Client(one.addr(0))
    with pytest.raises(shoal.NotFound):
        c.count("no_such_collection")
    c.create_collection("e", dim=3)
    with pytest.raises(shoal.AlreadyExists):
        c.create_collection("e", dim=3)
    with pytest.raises(shoal.InvalidArgument, match="dimension"):
        c.upsert("e", [1], [[1, 2]])
    with pytest.raises(shoal.InvalidArgument):
        c.upsert("e", [1, 2], [[1, 2, 3]])
    with pytest.raises(shoal.InvalidArgument):
        shoal.Client("nonsense")
    with pytest.raises(shoal.InvalidArgument):
        c.search("e", [1, 2, 3], consistency="sometimes")
    with pytest.raises(shoal.Unavailable):
        shoal.Client("127.0.0.1:1", retries=1, timeout=2).ping()
    assert c.delete("e", [42]) == 0
    with pytest.raises(shoal.InvalidArgument, match="negative"):
        c.upsert("e", [-1], [[1, 2, 3]])
    with pytest.raises(shoal.InvalidArgument, match="integers"):
        c.upsert("e", [1.5], [[1, 2, 3]])
    with pytest.raises(shoal.InvalidArgument, match="negative"):
        c.get("e", [-1])


def test_a_write_sent_again_applies_once(one):
    """The client session (doc/clients.md, "Exactly-once writes"): the same
    write number sent again is answered with the first copy's result and
    not applied again, even with another body; a number the client let go
    of is refused."""
    c = shoal.Client(one.addr(0))
    c.create_collection("dedup", dim=2)
    c.upsert("dedup", [1], [[1, 0]], payloads=[{"n": 1}])
    first = c.token
    answered = one.metric(0, "shoal_session_retries_answered_total")
    c._seq -= 1  # what a retry sends: the same number
    c.upsert("dedup", [1], [[1, 0]], payloads=[{"n": 99}])
    assert c.token == first, "a duplicate is answered with the first copy's token"
    assert c.get("dedup", [1])[0].payload == {"n": 1}
    assert one.metric(0, "shoal_session_retries_answered_total") == answered + 1
    c.upsert("dedup", [2], [[0, 1]], ack="all")
    first = c.token
    c._seq -= 1  # at ack all too: answered once every voter holds the first copy
    c.upsert("dedup", [2], [[0, 1]], ack="all")
    assert c.token == first, "a duplicate at ack all gets the first copy's token"
    c.upsert("dedup", [1], [[1, 0]], payloads=[{"n": 2}])  # the next number
    c._seq -= 2  # a late copy of a write the client has its answer to: not applied
    with pytest.raises(shoal.OutcomeUnknown, match="older than"):
        c.upsert("dedup", [1], [[1, 0]], payloads=[{"n": 3}])
    assert c.get("dedup", [1])[0].payload == {"n": 2}


def test_hung_first_seed(one):
    """A first seed that accepts connections and never answers: every
    write still goes through within its timeout (the status call has its
    own share of the deadline, and the handle moves on)."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # never accepted: the kernel completes the handshakes
    try:
        c = shoal.Client(["127.0.0.1:%d" % hung.getsockname()[1], one.addr(0)],
                         timeout=2 * SCALE)
        c.create_collection("hung", dim=2)
        for i in range(4):
            c.upsert("hung", [i], [[i, 0]])
        assert c.count("hung", consistency="strong") == 4
    finally:
        hung.close()


def test_read_your_writes_token(three):
    """A token handed from a client that wrote (at the leader, ack leader)
    to one reading on each follower: the reads see the write."""
    w = shoal.Client(three.addrs(), ack="leader")
    w.create_collection("ryw", dim=2)
    lead = three.leader()
    for f in [i for i in range(3) if i != lead]:
        r = shoal.Client(three.addr(f), consistency="read_your_writes", timeout=10 * SCALE)
        for i in range(20):
            w.upsert("ryw", [100 * f + i], [[i, f]])
            r.token = w.token
            assert [p.id for p in r.get("ryw", [100 * f + i])] == [100 * f + i]


# ------------------------------------------------------------------ three nodes

def test_writes_go_to_the_leader(three):
    lead = three.leader()
    follower = [i for i in range(3) if i != lead][0]
    before = sum(three.metric(i, "shoal_raft_forwarded_writes_total") for i in range(3))
    c = shoal.Client(three.addr(follower), timeout=20 * SCALE)
    c.create_collection("lw", dim=4)
    c.upsert("lw", np.arange(500), np.ones((500, 4)), batch=100, ack="quorum")
    after = sum(three.metric(i, "shoal_raft_forwarded_writes_total") for i in range(3))
    assert after == before, "a follower forwarded %d writes" % (after - before)
    assert c.address == three.addr(lead)
    assert c.count("lw", consistency="strong") == 500


def test_reads_where_asked(three):
    """read_addr: reads go to that node (a follower) while writes go to the
    leader; read_from="spread": each Client reads from a member drawn at
    random."""
    lead = three.leader()
    follower = [i for i in range(3) if i != lead][0]
    name = 'shoal_requests_total{api="binary",method="count",status="OK"}'
    counts = lambda: [three.metric(i, name) or 0 for i in range(3)]  # noqa: E731
    c = shoal.Client(three.addrs(), read_addr=three.addr(follower), timeout=20 * SCALE)
    c.create_collection("rw", dim=2)
    c.upsert("rw", [1, 2], [[1, 0], [0, 1]], ack="quorum")
    before = counts()
    for _ in range(5):
        assert c.count("rw", consistency="strong") == 2
    after = counts()
    assert after[follower] - before[follower] == 5 and after[lead] == before[lead]
    before = counts()
    for _ in range(24):
        assert shoal.Client(three.addrs(), read_from="spread").count("rw") == 2
    after = counts()
    assert sum(a > b for a, b in zip(after, before)) >= 2, "one node served every read"
    with pytest.raises(shoal.InvalidArgument):
        shoal.Client(three.addrs(), read_from="preferred")


def _write_through_faults(three, kind):
    """A writer through the seed list while the leader gets `kind`: every
    call succeeds or fails with a clear status, and no acknowledged write
    is lost."""
    c = shoal.Client(three.addrs(), timeout=3 * SCALE, ack="quorum")
    coll = "w_" + kind
    c.create_collection(coll, dim=2)
    lead = three.leader()
    acked, failures, unavailable, i, after = [], [], [], 0, 0
    hit = False
    while after < 20:
        if not hit and len(acked) >= 20:
            three.kill(lead, signal.SIGKILL if kind == "kill" else signal.SIGSTOP)
            hit, t_fault = True, time.monotonic()
        i += 1
        try:  # point i, and the counter (point 0) set to i
            c.upsert(coll, [i, 0], [[i, 0], [i, 0]], payloads=[None, {"n": i}])
            acked.append(i)
            after += hit
        except shoal.Unavailable as e:  # not applied, and never will be
            unavailable.append(i)
            failures.append(str(e))
        except (shoal.OutcomeUnknown, shoal.DeadlineExceeded) as e:
            failures.append(str(e))  # a clear status, each
        if hit and time.monotonic() - t_fault > 30 * SCALE:
            break
    rest = [j for j in range(3) if j != lead]
    new = three.leader(rest)
    # the same handle, once a leader is known, writes to it directly
    fwd = sum(three.metric(j, "shoal_raft_forwarded_writes_total") for j in rest)
    for k in range(10):
        c.upsert(coll, [i + 1 + k], [[0, 0]])
    assert sum(three.metric(j, "shoal_raft_forwarded_writes_total") for j in rest) == fwd
    if kind == "stop":
        three.kill(lead, signal.SIGCONT)
    else:
        three.start(lead)
    three.leader()
    r = shoal.Client(three.addrs(), timeout=15 * SCALE)
    got = {p.id for p in r.scroll(coll, consistency="strong")} - {0}
    assert not set(unavailable) & got, "writes reported UNAVAILABLE were applied: %s" % sorted(
        set(unavailable) & got)
    # the writes sent again under the fault applied once: no old one came
    # back over a newer one (the counter holds the last write's value)
    n = r.get(coll, [0], consistency="strong")[0].payload["n"]
    assert max(acked) <= n <= i and n not in unavailable, \
        "counter %d: last acknowledged %d of %d" % (n, max(acked), i)
    return acked, failures, got


def test_kill_leader(three):
    acked, failures, got = _write_through_faults(three, "kill")
    assert set(acked) <= got, "acknowledged writes lost: %s" % sorted(set(acked) - got)
    assert len(acked) >= 40, "the writer did not go on after the fault: %s" % failures


def test_stop_leader(three):
    acked, failures, got = _write_through_faults(three, "stop")
    assert set(acked) <= got, "acknowledged writes lost: %s" % sorted(set(acked) - got)
    assert len(acked) >= 40, "the writer did not go on after the fault: %s" % failures
