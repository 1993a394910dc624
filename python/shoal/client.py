"""The shoal client over the binary protocol (doc/protocol.md, doc/python.md).

One Client holds one connection at a time and follows the cluster as
libshoal does (doc/clients.md): a list of seeds, writes sent to the leader
(asked once per connection), retries with a jittered back-off within the
call's timeout, a read_your_writes token carried by the client.  Not
thread-safe: use one Client per thread.
"""

import json
import os
import random
import socket
import ssl
import struct
import time

import numpy as np

from . import shoal_pb2 as pb
from ._filter import to_proto
from .errors import (DeadlineExceeded, Internal, InvalidArgument, OutcomeUnknown, SessionExpired,
                     ShoalError, Unavailable, error_for)

_HDR = struct.Struct("<IQHBB")  # length, id, method, flags, status
_F_RESPONSE, _F_METADATA = 0x01, 0x02
_MAX_ADDRS = 64
_ROLE_TTL = 1.0  # a leader found is asked again after this long, and after a failed write

CONSISTENCY = {
    None: pb.CONSISTENCY_DEFAULT,
    "eventual": pb.CONSISTENCY_EVENTUAL,
    "read_your_writes": pb.CONSISTENCY_READ_YOUR_WRITES,
    "strong": pb.CONSISTENCY_STRONG,
    "quorum": pb.CONSISTENCY_QUORUM,
}
ACK = {
    None: pb.ACK_DEFAULT,
    "leader": pb.ACK_LEADER,
    "one": pb.ACK_ONE,
    "quorum": pb.ACK_QUORUM,
    "all": pb.ACK_ALL,
}
METRIC = {"l2": pb.METRIC_L2, "cosine": pb.METRIC_COSINE, "dot": pb.METRIC_DOT}
METRIC_NAME = {pb.METRIC_DEFAULT: "l2", pb.METRIC_L2: "l2", pb.METRIC_COSINE: "cosine",
               pb.METRIC_DOT: "dot"}


# The field number of `write` (WriteOptions) in each write request: a
# retry appends the write's options again (with `retry` set, or renumbered
# in a new session); the last copy of a message field is the one a server
# takes (protobuf merges the two, and the second holds every field).
_WRITE_FIELD = {pb.METHOD_CREATE_COLLECTION: 6, pb.METHOD_DROP_COLLECTION: 2,
                pb.METHOD_UPSERT: 3, pb.METHOD_DELETE: 3, pb.METHOD_SET_PAYLOAD: 8}


_READ_METHODS = {pb.METHOD_LIST_COLLECTIONS, pb.METHOD_DESCRIBE_COLLECTION, pb.METHOD_GET,
                 pb.METHOD_COUNT, pb.METHOD_SCROLL, pb.METHOD_SEARCH}


def _options_field(method, wopts):
    b = wopts.SerializeToString()
    return bytes([_WRITE_FIELD[method] << 3 | 2, len(b)]) + b


class _Lost(Exception):
    """The connection failed; `sent`: after the request left."""

    def __init__(self, message, sent):
        super().__init__(message)
        self.sent = sent


class Hit:
    """A search result: id, distance (lower is nearer), payload (a dict or
    None), vector (a float32 numpy array, or None)."""

    __slots__ = ("id", "distance", "payload", "vector")

    def __init__(self, id, distance, payload, vector):
        self.id, self.distance, self.payload, self.vector = id, distance, payload, vector

    def __repr__(self):
        return "Hit(id=%d, distance=%g)" % (self.id, self.distance)


class Point:
    """A stored point: id, vector (float32 numpy array or None), payload."""

    __slots__ = ("id", "vector", "payload")

    def __init__(self, id, vector, payload):
        self.id, self.vector, self.payload = id, vector, payload

    def __repr__(self):
        return "Point(id=%d)" % self.id


def _decode(cls, body):
    """A reply message; one that does not decode is an Internal error."""
    try:
        return cls.FromString(body)
    except Exception as e:  # google.protobuf.message.DecodeError and kin
        raise Internal("reply does not decode as %s: %s" % (cls.__name__, e)) from None


def _ids(ids, what="ids"):
    """ids as a uint64 array: integers, none negative."""
    a = np.asarray(ids).reshape(-1)
    if a.size and a.dtype.kind not in "iu":
        raise InvalidArgument("%s: integers wanted, not %s" % (what, a.dtype))
    if a.dtype.kind == "i" and a.size and a.min() < 0:
        raise InvalidArgument("%s: %d is negative (ids are 0 to 2^64-1)" % (what, a.min()))
    return a.astype(np.uint64)


def _payload_out(b):
    return json.loads(b) if b else None


def _vector_out(v):
    return np.asarray(v, dtype=np.float32) if len(v) else None


def _split(addr):
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidArgument("'%s' is not host:port" % addr)
    return host.strip("[]"), int(port)


def _varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _encode_points(ids, vectors, payloads):
    """UpsertRequest's repeated Point field (2), encoded directly: a point is
    id (field 1), packed floats (field 2), payload (field 3)."""
    parts = []
    for i, row in enumerate(vectors):
        vec = row.tobytes()
        body = b"\x08" + _varint(int(ids[i])) + b"\x12" + _varint(len(vec)) + vec
        if payloads is not None and payloads[i] is not None:
            p = json.dumps(payloads[i], separators=(",", ":")).encode()
            body += b"\x1a" + _varint(len(p)) + p
        parts.append(b"\x12" + _varint(len(body)) + body)
    return b"".join(parts)


class Client:
    """A handle on a shoal cluster.

    addrs: "host:port", "h1:p1,h2:p2" or a list of them (seeds).  timeout:
    seconds per call (also sent as the request's deadline).  consistency,
    ack: the defaults of reads and writes (None: the server's).  api_key:
    sent with every request.  tls_ca: speak TLS, trusting this CA file;
    tls_cert, tls_key: a client certificate.  follow=False: writes go to
    the connected node, which forwards them to the leader.  read_from:
    where reads go — "connected" (the node writes go to), "preferred"
    (read_addr first, then the seeds) or "spread" (a member drawn at random
    per Client, then the others): doc/clients.md, "Where reads go".
    """

    def __init__(self, addrs="127.0.0.1:7472", *, timeout=30.0, connect_timeout=2.0,
                 retries=8, consistency=None, ack=None, api_key=None, tls_ca=None,
                 tls_cert=None, tls_key=None, tls_server_name=None,
                 max_frame_bytes=64 << 20, follow=True, read_from="connected",
                 read_addr=None):
        if isinstance(addrs, str):
            addrs = addrs.split(",")
        self._addrs = [a.strip() for a in addrs if a and a.strip()]
        if not self._addrs:
            raise InvalidArgument("no address given")
        for a in self._addrs:
            _split(a)
        self.timeout, self.connect_timeout, self.retries = timeout, connect_timeout, retries
        self.consistency, self.ack = consistency, ack
        self._check(consistency, CONSISTENCY, "consistency")
        self._check(ack, ACK, "ack")
        self._api_key, self._max = api_key, max_frame_bytes
        self._tls = None
        self._server_name = tls_server_name
        if tls_ca is not None:
            self._tls = ssl.create_default_context(cafile=tls_ca)
            if tls_cert is not None:
                self._tls.load_cert_chain(tls_cert, tls_key)
        self._cur, self._sock, self._buf = 0, None, bytearray()
        self._role_at, self._hint, self._next_id = None, "", 0
        self.follow = follow
        self._wopts = None
        self._new_session()
        self._moved = self._electing = False
        self.token = (0, 0)  # (term, index) of the last acknowledged write
        self.read_state = None  # the last read's ReadState message
        if read_from not in ("connected", "preferred", "spread"):
            raise InvalidArgument("read_from: '%s' is not connected, preferred or spread"
                                  % read_from)
        if read_from == "preferred" and not read_addr:
            raise InvalidArgument("read_from preferred needs read_addr")
        if read_addr:
            _split(read_addr)
            read_from = "preferred" if read_from == "connected" else read_from
        self.read_from, self.read_addr, self._reader = read_from, read_addr, None

    @staticmethod
    def _check(v, table, what):
        if v not in table:
            raise InvalidArgument("%s: '%s' is not one of %s" % (
                what, v, ", ".join(k for k in table if k)))

    # ------------------------------------------------------------ connection

    def close(self):
        if self._reader is not None:
            self._reader.close()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock, self._buf = None, bytearray()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def address(self):
        """The address of the node the client talks to (or would next)."""
        return self._addrs[self._cur]

    def _connect_one(self, addr, deadline):
        host, port = _split(addr)
        left = min(self.connect_timeout, deadline - time.monotonic())
        if left <= 0:
            raise Unavailable("no time left to connect to %s" % addr)
        try:
            s = socket.create_connection((host, port), timeout=left)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                s = self._tls.wrap_socket(s, server_hostname=self._server_name or host)
        except (OSError, ssl.SSLError) as e:
            raise Unavailable("cannot connect to %s: %s" % (addr, e)) from None
        self._sock, self._buf, self._role_at = s, bytearray(), None

    def _connect(self, deadline):
        if self._sock is not None:
            return
        err = Unavailable("no server reached before the deadline (%.1f s)" % self.timeout)
        for _ in range(len(self._addrs)):
            if time.monotonic() >= deadline:
                break
            try:
                return self._connect_one(self._addrs[self._cur], deadline)
            except Unavailable as e:
                err = e
                self._cur = (self._cur + 1) % len(self._addrs)
        raise err

    def _use_addr(self, addr):
        if addr in self._addrs:
            self._cur = self._addrs.index(addr)
        elif len(self._addrs) < _MAX_ADDRS:
            self._addrs.append(addr)
            self._cur = len(self._addrs) - 1

    # ------------------------------------------------------------ frames

    def _frame(self, method, body, deadline):
        self._next_id += 1
        meta = pb.Metadata(timeout_ms=max(1, int((deadline - time.monotonic()) * 1000)))
        if self._api_key:
            meta.api_key = self._api_key
        m = meta.SerializeToString()
        payload = struct.pack("<I", len(m)) + m + body
        return self._next_id, _HDR.pack(len(payload), self._next_id, method, _F_METADATA, 0) + payload

    def _recv_exact(self, n, deadline):
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded("no reply from %s within %.1f s" % (
                    self.address, self.timeout))
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(max(65536, n - len(self._buf)))
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError) as e:
                raise _Lost("connection to %s lost: %s" % (self.address, e), True) from None
            if not chunk:
                raise _Lost("connection to %s closed by the server" % self.address, True)
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _exchange(self, method, body, deadline):
        """One request and its reply body (OK), on the current connection."""
        if time.monotonic() >= deadline:
            raise Unavailable("the deadline (%.1f s) passed before the request was sent" %
                              self.timeout)
        rid, frame = self._frame(method, body, deadline)
        try:
            self._sock.settimeout(max(0.001, deadline - time.monotonic()))
            self._sock.sendall(frame)
        except (OSError, ssl.SSLError) as e:
            raise _Lost("connection to %s lost while sending: %s" % (self.address, e),
                        False) from None
        while True:
            length, fid, _, flags, status = _HDR.unpack(self._recv_exact(_HDR.size, deadline))
            if length > self._max:  # the stream cannot go on
                raise _Lost("a reply of %d bytes from %s (the limit is %d)" % (
                    length, self.address, self._max), True)
            reply = self._recv_exact(length, deadline)
            if fid != rid or not flags & _F_RESPONSE:
                continue
            if status != 0:
                st = _decode(pb.Status, reply)
                if st.leader_address:
                    self._hint = st.leader_address
                raise error_for(status, st.message or "(no message)")
            return reply

    # ------------------------------------------------------------ calls

    def _move_on(self, message, electing=False):
        """Leave the node for the next attempt and call; the write was not sent."""
        self.close()
        self._cur = (self._cur + 1) % len(self._addrs)
        self._moved = True
        self._electing = electing
        return Unavailable(message)

    def _follow_leader(self, deadline):
        if not self.follow or (self._role_at is not None and
                               time.monotonic() - self._role_at < _ROLE_TTL):
            return
        now = time.monotonic()
        ask = now + min(max(deadline - now, 0) / 2, self.connect_timeout)
        here = self.address
        try:
            st = _decode(pb.ClusterStatusResponse,
                         self._exchange(pb.METHOD_CLUSTER_STATUS, b"", ask))
        except (_Lost, DeadlineExceeded, Unavailable) as e:
            raise self._move_on("asking %s for the leader: %s (the write was not sent)" % (
                here, e)) from None
        except ShoalError:
            return  # a node that will not say (a key without the role): stay
        if st.role == "leader" or st.leader_address == here:
            self._role_at = time.monotonic()
            return
        if not st.leader_address:
            return  # no leader known (an election): ask again before the next write
        self.close()
        self._use_addr(st.leader_address)
        try:
            self._connect_one(st.leader_address, deadline)
        except Unavailable as e:
            # a leader gone: not through a follower, whose forward would be
            # lost with it; the next attempt asks again
            raise self._move_on("the leader %s cannot be reached: %s" % (
                st.leader_address, e.message), electing=True) from None
        self._role_at = time.monotonic()  # named the leader by a node: taken as such

    def _backoff(self, attempt, deadline):
        base = 0.025 * (1 << min(attempt - 1, 4))
        pause = min(base / 2 + random.random() * base / 2, deadline - time.monotonic())
        if pause > 0:
            time.sleep(pause)

    def _next_addr(self):
        if self._hint:
            self._use_addr(self._hint)
            self._hint = ""
        elif not self._moved:
            self._cur = (self._cur + 1) % len(self._addrs)
        self._moved = False

    def _reader_client(self):
        """The Client reads go through when read_from is not "connected":
        its seeds are read_addr then ours, or the alive members from one
        drawn at random (ours when the cluster cannot be asked)."""
        if self._reader is not None:
            return self._reader
        first = [self.read_addr] if self.read_from == "preferred" else []
        if self.read_from == "spread":
            try:
                r = _decode(pb.ClusterStatusResponse,
                            self._call(pb.METHOD_CLUSTER_STATUS, b""))
                first = [m.client_address for m in r.members
                         if m.state == pb.MEMBER_ALIVE and m.client_address]
            except ShoalError:
                first = []
            random.shuffle(first)
        seeds = list(dict.fromkeys(first + self._addrs))
        c = Client(seeds, timeout=self.timeout, connect_timeout=self.connect_timeout,
                   retries=self.retries, api_key=self._api_key, max_frame_bytes=self._max)
        c._tls, c._server_name = self._tls, self._server_name
        self._reader = c
        return c

    def _call(self, method, req, write=False):
        """Send req (a message, or bytes), return the reply body; retries
        as doc/clients.md says.  Reads go where read_from says."""
        if not write and method in _READ_METHODS and self.read_from != "connected":
            r = self._reader_client()
            r.timeout = self.timeout
            return r._call(method, req)
        body = req if isinstance(req, (bytes, bytearray)) else req.SerializeToString()
        deadline = time.monotonic() + self.timeout
        err = Unavailable("no attempt made")
        self._moved = False
        try:
            return self._attempts(method, body, write, deadline, err)
        except ShoalError:
            raise
        except BaseException:
            self.close()  # interrupted mid-frame (^C): the stream is out of step
            raise

    def _attempts(self, method, body, write, deadline, err):
        # an attempt that met a dead leader's name (an election under way)
        # does not count against retries: those go on within the deadline.
        # A write whose attempt may have applied is sent again with its
        # session (same seq, WriteOptions.retry set: it applies once and is
        # answered as the write); then only OK or a deadline stands, other
        # failures say nothing of that attempt (OutcomeUnknown).
        attempt, spent, maybe = 0, 0, False
        while spent <= self.retries:
            if attempt > 0:
                if time.monotonic() >= deadline:
                    break
                # during an election poll every 25-50 ms (libshoal does too)
                self._backoff(2 if self._electing else attempt, deadline)
                self._next_addr()
            attempt += 1
            self._electing = False
            try:
                return self._attempt(method, body, write, deadline)
            except OutcomeUnknown as e:
                if not write or method not in _WRITE_FIELD or self._wopts is None:
                    raise
                if not maybe:
                    self._wopts.retry = True
                    body = bytes(body) + _options_field(method, self._wopts)
                err, maybe = e, True
            except SessionExpired as e:
                # the cluster dropped our session: a new one; a write none of
                # whose attempts may have applied goes again as its first
                self._new_session()
                if maybe or self._wopts is None:
                    raise OutcomeUnknown("%s (an earlier attempt of the write may have been "
                                         "applied)" % e.message) from None
                self._seq += 1
                self._wopts.client_id, self._wopts.seq = self._client_id, self._seq
                self._wopts.done_below, self._wopts.retry = self._seq, False
                body = bytes(body) + _options_field(method, self._wopts)
                err = e
            except Unavailable as e:
                err = e
            except ShoalError as e:
                if maybe and not isinstance(e, DeadlineExceeded):
                    raise OutcomeUnknown("%s (an earlier attempt of the write may have been "
                                         "applied)" % e) from None
                raise
            spent += not self._electing
        if maybe and not isinstance(err, (OutcomeUnknown, DeadlineExceeded)):
            raise OutcomeUnknown("%s (an earlier attempt of the write may have been applied)"
                                 % err) from None
        raise err

    def _attempt(self, method, body, write, deadline):
        """One try: the reply body, or Unavailable when another try may be
        made (nothing was applied); other errors end the call."""
        self._hint = ""
        try:
            self._connect(deadline)
            if write:
                self._follow_leader(deadline)
            try:
                return self._exchange(method, body, deadline)
            except BaseException:
                if write:
                    self._role_at = None  # it may not lead any more: ask again
                raise
        except Unavailable:
            self.close()
            raise
        except _Lost as e:
            self.close()
            if write and e.sent:
                raise OutcomeUnknown(
                    "%s (after the write was sent: it may have been applied)" % e) from None
            raise Unavailable(str(e)) from None
        except DeadlineExceeded:
            # the node may be stopped (SIGSTOP keeps its sockets open): the
            # next call starts from the next address
            self.close()
            self._cur = (self._cur + 1) % len(self._addrs)
            raise

    def _read_opts(self, consistency):
        level = self.consistency if consistency is None else consistency
        self._check(level, CONSISTENCY, "consistency")
        o = pb.ReadOptions(consistency=CONSISTENCY[level])
        if level == "read_your_writes":
            o.token.term, o.token.index = self.token
        return o

    def _write_opts(self, ack):
        """A write's options: the ack level and the next seq of the client
        session (every attempt of the write carries it, so a retry applies
        once: doc/clients.md, "Exactly-once writes"); calls on a Client run
        one at a time, so every earlier write is answered."""
        level = self.ack if ack is None else ack
        self._check(level, ACK, "ack")
        if level in ("leader", "one"):  # fast, without a session: not sent again
            self._wopts = None
            return pb.WriteOptions(ack=ACK[level])
        if self._pid != os.getpid():  # a forked child: its own session
            self._new_session()
        self._seq += 1
        self._wopts = pb.WriteOptions(ack=ACK[level], client_id=self._client_id,
                                      seq=self._seq, done_below=self._seq)
        return self._wopts

    def _new_session(self):
        self._client_id, self._seq, self._pid = os.urandom(16), 0, os.getpid()

    def _wrote(self, body):
        r = _decode(pb.WriteResponse, body)
        if r.HasField("token"):
            self.token = (r.token.term, r.token.index)
        return r

    # ------------------------------------------------------------ collections

    def ping(self):
        self._call(pb.METHOD_PING, b"")

    def create_collection(self, name, dim, metric="l2", m=0, ef_construction=0, ack=None):
        if metric not in METRIC:
            raise InvalidArgument("metric: '%s' is not one of l2, cosine, dot" % metric)
        self._wrote(self._call(pb.METHOD_CREATE_COLLECTION, pb.CreateCollectionRequest(
            name=name, dim=dim, metric=METRIC[metric], m=m, ef_construction=ef_construction,
            write=self._write_opts(ack)), write=True))

    def drop_collection(self, name, ack=None):
        self._wrote(self._call(pb.METHOD_DROP_COLLECTION, pb.DropCollectionRequest(
            name=name, write=self._write_opts(ack)), write=True))

    @staticmethod
    def _info(c):
        return {"name": c.name, "dim": c.dim, "metric": METRIC_NAME[c.metric], "m": c.m,
                "ef_construction": c.ef_construction, "count": c.count,
                "memory_bytes": c.memory_bytes, "points_indexed": c.points_indexed,
                "points_fresh": c.points_fresh}

    def list_collections(self, consistency=None):
        r = _decode(pb.ListCollectionsResponse, self._call(
            pb.METHOD_LIST_COLLECTIONS, pb.ListCollectionsRequest(
                read=self._read_opts(consistency))))
        self.read_state = r.read_state
        return [self._info(c) for c in r.collections]

    def describe_collection(self, name, consistency=None):
        r = _decode(pb.CollectionInfo, self._call(
            pb.METHOD_DESCRIBE_COLLECTION, pb.DescribeCollectionRequest(
                name=name, read=self._read_opts(consistency))))
        self.read_state = r.read_state
        return self._info(r)

    # ------------------------------------------------------------ points

    def upsert(self, collection, ids, vectors, payloads=None, batch=1000, ack=None,
               progress=None):
        """Insert or replace points: ids (n integers), vectors (an n x dim
        array-like, sent as float32), payloads (n dicts or None, or None).
        Sent in requests of `batch` points; progress(done, total) after
        each.  Returns the number of points acknowledged."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        ids = _ids(ids)
        n = len(ids)
        if vectors.ndim != 2 or vectors.shape[0] != n:
            raise InvalidArgument("vectors: %s for %d ids (want n x dim)" % (
                "x".join(map(str, vectors.shape)), n))
        if payloads is not None and len(payloads) != n:
            raise InvalidArgument("payloads: %d for %d ids" % (len(payloads), n))
        if batch < 1:
            raise InvalidArgument("batch: %d (at least 1)" % batch)
        self._check(self.ack if ack is None else ack, ACK, "ack")
        done = 0
        for at in range(0, n, batch):
            end = min(at + batch, n)
            try:
                head = pb.UpsertRequest(collection=collection,
                                        write=self._write_opts(ack)).SerializeToString()
                body = head + _encode_points(ids[at:end], vectors[at:end],
                                             None if payloads is None else payloads[at:end])
                self._wrote(self._call(pb.METHOD_UPSERT, body, write=True))
            except (ShoalError, TypeError, ValueError) as e:
                if done == 0:
                    raise
                if not isinstance(e, ShoalError):  # a payload json cannot encode
                    e = InvalidArgument("payloads[%d..%d): %s" % (at, end, e))
                e.message += " (after %d of %d points were acknowledged)" % (done, n)
                e.applied = done
                raise e from None
            done = end
            if progress is not None:
                progress(done, n)
        return done

    def delete(self, collection, ids, ack=None):
        """Delete points by id; returns how many existed."""
        r = self._wrote(self._call(pb.METHOD_DELETE, pb.DeleteRequest(
            collection=collection, ids=_ids(ids).tolist(), write=self._write_opts(ack)),
            write=True))
        return r.affected

    def get(self, collection, ids, with_payload=True, with_vector=True, consistency=None):
        """The points of ids that exist, in the order asked."""
        r = _decode(pb.PointsResponse, self._call(pb.METHOD_GET, pb.GetRequest(
            collection=collection, ids=_ids(ids).tolist(), with_payload=with_payload,
            with_vector=with_vector, read=self._read_opts(consistency))))
        self.read_state = r.read_state
        return [Point(p.id, _vector_out(p.vector), _payload_out(p.payload)) for p in r.points]

    def search(self, collection, vector, k=10, ef=0, filter=None, with_payload=True,
               with_vector=False, exact=False, consistency=None):
        """The k nearest points to vector (nearest first), as Hits; vector
        may be a 2-d array of queries: then a list of lists."""
        q = np.asarray(vector, dtype=np.float32)
        if q.ndim == 2:
            return [self.search(collection, row, k, ef, filter, with_payload, with_vector,
                                exact, consistency) for row in q]
        req = pb.SearchRequest(collection=collection, vector=q.tolist(), k=k, ef=ef,
                               with_payload=with_payload, with_vector=with_vector,
                               exact=exact, read=self._read_opts(consistency))
        if filter is not None:
            req.filter.CopyFrom(to_proto(filter))
        r = _decode(pb.SearchResponse, self._call(pb.METHOD_SEARCH, req))
        self.read_state = r.read_state
        return [Hit(p.id, p.distance, _payload_out(p.payload), _vector_out(p.vector))
                for p in r.points]

    def scroll(self, collection, filter=None, limit=1000, with_payload=True,
               with_vector=False, consistency=None, offset=0):
        """Every point (matching filter), in id order, page by page."""
        while True:
            req = pb.ScrollRequest(collection=collection, offset=offset, limit=limit,
                                   with_payload=with_payload, with_vector=with_vector,
                                   read=self._read_opts(consistency))
            if filter is not None:
                req.filter.CopyFrom(to_proto(filter))
            r = _decode(pb.ScrollResponse, self._call(pb.METHOD_SCROLL, req))
            self.read_state = r.read_state
            for p in r.points:
                yield Point(p.id, _vector_out(p.vector), _payload_out(p.payload))
            if not r.has_next:
                return
            offset = r.next_offset

    def count(self, collection, filter=None, consistency=None):
        req = pb.CountRequest(collection=collection, read=self._read_opts(consistency))
        if filter is not None:
            req.filter.CopyFrom(to_proto(filter))
        r = _decode(pb.CountResponse, self._call(pb.METHOD_COUNT, req))
        self.read_state = r.read_state
        return r.count

    def cluster_status(self):
        """The connected node's view: a dict of ClusterStatusResponse's
        fields (role, term, leader_id, leader_address, ...)."""
        r = _decode(pb.ClusterStatusResponse, self._call(pb.METHOD_CLUSTER_STATUS, b""))
        return {f.name: v for f, v in r.ListFields() if not f.message_type}
