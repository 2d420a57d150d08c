"""Every HTTP route fuzzed against a real in-process node over real HTTP.

The routes are read from the app's router, so a new route is fuzzed without touching this file.
The node is a one-node cluster (``local`` preset, bully mode, auth token set) that elects itself;
it runs in its own event loop thread and keeps running its duties between examples.

Invariants, for any request: never a 5xx; a mutating method without the right token is 401
``{"error": "unauthorized"}``; every error body is a JSON object with an ``error`` reason;
every response has ``X-Node-ID``; and a rejected (4xx) call leaves the replicated state as it
was. For the last: the ``changes`` counter of ``GET /state/digest`` and the state's content
(read in the node's loop) are compared. The digest hash itself is not: it covers the machine
clock, which the leader ticks every ``state.tick_interval_s``, and the dedup table, where every
command, refused ones included, is remembered by design (its retry gets the same answer).

Not covered by the invariants (a limit of aiohttp, not of our routes): a request that aiohttp's
HTTP parser rejects before any route runs (request line or header over 8190 bytes, bytes that
are not URL characters, a broken chunk size, a Content-Length that is not a number, an unknown
Content-Encoding, a whole body not in the Content-Encoding it claims) gets aiohttp's own
text/plain 400 without ``X-Node-ID``. The examples keep the request line under that limit;
``test_requests_the_http_parser_rejects`` checks that those still get a 4xx and leave the node
and its state as they were.

Hypothesis runs with a fixed seed per route (no example database), so CI is reproducible.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, TypeVar
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from yarl import URL

from ringrift_cluster.api.app import create_app
from ringrift_cluster.config import load_config
from ringrift_cluster.node import ClusterNode
from ringrift_cluster.testing import wait_until

T = TypeVar("T")
TOKEN = "fuzz-http-token"
NODE_ID = "local-node"
OPEN_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
MAX_REQUEST_LINE = 8190  # aiohttp's parser limit (see the module docstring)
EXAMPLES_PER_ROUTE = 50
# Commands the node proposes on its own (the failed-member duty, the clock tick): they may land
# while a fuzzed call is in flight and are not the call's doing.
BACKGROUND_OPS = frozenset({"node.release", "tick"})


# -- The routes, from the router ---------------------------------------------------------------


def _router_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app registers; HEAD comes with every GET."""
    config = load_config(None, env={"RINGRIFT_DATA_DIR": "/nonexistent/fuzz-route-listing"})
    app = create_app(ClusterNode(config).parts)
    routes = {(route.method, route.resource.canonical) for route in app.router.routes()
              if route.resource is not None and route.method != "HEAD"}
    return sorted(routes, key=lambda r: (r[1], r[0]))


ROUTES = _router_routes()
METHODS_BY_PATH: dict[str, set[str]] = {}
for _method, _path in ROUTES:
    METHODS_BY_PATH.setdefault(_path, set()).add(_method)
    if _method == "GET":
        METHODS_BY_PATH[_path].add("HEAD")
PLACEHOLDER = re.compile(r"\{[^}]+\}")


def _sample_path(template: str, value: str = "x1") -> str:
    return PLACEHOLDER.sub(value, template)


def _methods_for(path: str) -> set[str]:
    """Every method some route takes for this concrete path (``/raft/work/claim`` is also a
    ``/raft/work/{work_id}``)."""
    return {m for template, methods in METHODS_BY_PATH.items()
            if re.fullmatch(PLACEHOLDER.sub("[^/]+", template), path) for m in methods}


# -- A node in its own loop thread ----------------------------------------------------------------


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-node-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        async def on_loop() -> T:
            return fn()

        return self.run(on_loop(), timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_rest(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self.loop.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Applied:
    op: str
    ok: bool
    changed: bool


class LiveNode:
    """The node under test, its HTTP client, and a record of every command its machine applied."""

    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        config = load_config(None, env={"RINGRIFT_CLUSTER_AUTH_TOKEN": TOKEN, "RINGRIFT_DATA_DIR": str(data_dir),
                                        "RINGRIFT_PRESET": "local"}, overrides={"api.port": self.port})
        self.max_body = config.api.max_body_bytes
        self.loop = LoopThread()
        self.node = self.loop.run(self._build(config))
        self.applied: list[Applied] = []
        self._record_applies()
        self.loop.run(self.node.start())
        wait_until(lambda: self.loop.call(lambda: self.node.role == "leader"), 20, what="the one node leads",
                   describe=lambda: self.loop.call(lambda: self.node.role))
        self.session: aiohttp.ClientSession = self.loop.run(self._session())

    @staticmethod
    async def _build(config: Any) -> ClusterNode:
        return ClusterNode(config)

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))

    def _record_applies(self) -> None:
        machine = self.node.store.machine  # type: ignore[union-attr]
        apply = machine.apply

        def recording(command: Any) -> dict[str, Any]:
            before = machine.core.counters.get("change", 0)
            result = apply(command)
            op = command.get("op") if isinstance(command, dict) else None
            self.applied.append(Applied(str(op), bool(result.get("ok")), machine.core.counters.get("change", 0) != before))
            return result

        machine.apply = recording  # type: ignore[method-assign]

    def close(self) -> None:
        try:
            self.loop.run(self.session.close())
            self.loop.run(self.node.stop(graceful=False))
        finally:
            self.loop.close()

    # -- HTTP ------------------------------------------------------------------------------------

    def request(self, method: str, target: str, *, headers: dict[str, str] | None = None,
                body: bytes | None = None, chunked: bool = False) -> Reply:
        return self.loop.run(self._request(method, target, headers or {}, body, chunked))

    async def _request(self, method: str, target: str, headers: dict[str, str], body: bytes | None,
                       chunked: bool) -> Reply:
        data: Any = body
        if body is not None and chunked:
            data = _chunks(body)
        async with self.session.request(method, URL(self.base + target, encoded=True), headers=headers, data=data,
                                        allow_redirects=False) as response:
            raw = await response.read()
            return Reply(response.status, dict(response.headers), raw)

    def get_json(self, path: str) -> tuple[int, Any]:
        reply = self.request("GET", path)
        return reply.status, reply.json()

    # -- State -----------------------------------------------------------------------------------

    def state_view(self) -> "StateView":
        """The digest's change counter (over HTTP) and the state's content (in the node's loop)."""
        status, digest = wait_until(lambda: (r := self.get_json("/state/digest"))[0] == 200 and r, 15,
                                    what="GET /state/digest answers 200", describe=lambda: self.get_json("/state/digest"))
        return self.loop.call(lambda: StateView.of(self.node, digest["changes"], len(self.applied)))


@dataclass(frozen=True)
class StateView:
    changes: int
    content: str
    clock: float
    next_expiry: float | None
    applied: int

    @classmethod
    def of(cls, node: ClusterNode, changes: int, applied: int) -> "StateView":
        machine = node.store.machine  # type: ignore[union-attr]
        snapshot = machine.snapshot()
        content = {k: v for k, v in snapshot.items() if k not in ("clock", "dedup")}
        expiries = [e for e in (machine.work.next_expiry, machine.locks.next_expiry) if e is not None]
        return cls(changes, json.dumps(content, sort_keys=True), snapshot["clock"], min(expiries, default=None), applied)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 65536):
        yield body[i:i + 65536]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    node = LiveNode(tmp_path_factory.mktemp("fuzz-http"))
    try:
        yield node
    finally:
        node.close()


# -- The invariants ----------------------------------------------------------------------------------


def check_reply(live: LiveNode, method: str, authorized: bool, reply: Reply, what: str) -> None:
    assert reply.status < 500, f"{what}: {reply.status} {reply.body[:300]!r}"
    assert reply.headers.get("X-Node-ID") == NODE_ID, f"{what}: no X-Node-ID in {reply.headers}"
    if method not in OPEN_METHODS and not authorized:
        assert reply.status == 401, f"{what}: {reply.status} without the token"
        assert reply.json() == {"error": "unauthorized"}, what
    if reply.status >= 400 and method != "HEAD":
        try:
            body = reply.json()
        except ValueError:
            raise AssertionError(f"{what}: error body is not JSON: {reply.body[:300]!r}") from None
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], \
            f"{what}: error body without a reason: {body!r}"[:600]


def check_unchanged(live: LiveNode, before: StateView, after: StateView, what: str) -> None:
    """A rejected call changed nothing; what the node did on its own in the meantime is allowed."""
    window = live.applied[before.applied:after.applied]
    ours = [a for a in window if a.op not in BACKGROUND_OPS]
    assert not any(a.changed for a in ours), f"{what}: a rejected call changed the state: {ours}"
    if any(a.changed for a in window):
        return  # the node released a failed member meanwhile: nothing left to compare
    assert after.changes == before.changes, f"{what}: digest changes {before.changes} -> {after.changes}"
    if before.next_expiry is not None and before.next_expiry <= after.clock:
        return  # a lease ran out on the machine clock meanwhile (expiry is not a change of ours)
    assert after.content == before.content, f"{what}: the state's content changed"


# -- Strategies ------------------------------------------------------------------------------------

# Field names the routes read (so objects are often near misses rather than pure noise).
FIELDS = (
    "candidate_id", "leader_id", "lease_id", "lease_duration", "lease_epoch", "fence_token", "lease_ttl_seconds",
    "lease_expires", "node_id", "host", "port", "role", "leader_term", "last_heartbeat", "capabilities",
    "work_id", "work_type", "priority", "config", "max_attempts", "timeout_s", "work_types", "lease_s",
    "claim_token", "result", "error", "retry", "job_id", "job_type", "name", "version", "stage", "path",
    "metrics", "holder", "ttl_s", "request_id", "command", "query", "args", "consistent", "snapshot",
    "v", "op", "rid", "now", "format", "counters", "voter_node_ids", "version", "has_gpu",
)
# Path segments that are classic trouble, sent exactly as written (already percent-encoded).
RAW_SEGMENTS = ("..", ".", "%00", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "%2F", "%ZZ", "%", "%ED%A0%80", "%C0%AE",
                "%FF%FE", "~", "*", NODE_ID, "a%20b", "%0D%0AX-Injected:%201", "x" * 3000)
CONTENT_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=zz", "application/json; charset=latin-1", "")

json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10 ** 40), max_value=10 ** 40)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
                | st.sampled_from(["", NODE_ID, "peer-1", "127.0.0.1", "x" * 500, "\x00", "\ud7ff\ue000"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), inner, max_size=5),
                           max_leaves=15)
field_objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=15), json_values, max_size=8)


def _q(text: str) -> str:
    """Percent-encoded, lone surrogates included (as the UTF-8 bytes they would be)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _encode_segment(text: str) -> str:
    return _q(text)[:3000]


segments = (st.sampled_from(["w1", "j1", "m", "1", "lock-a", "peer-1"])
            | st.sampled_from(RAW_SEGMENTS)
            | st.text(max_size=40).map(_encode_segment)
            | st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=60).map(_encode_segment)
            | st.text(min_size=200, max_size=1000).map(_encode_segment))

queries = st.one_of(
    st.just(""),
    st.just(""),
    st.sampled_from(["?consistent=true", "?consistent=1", "?consistent=%00", "?consistent=", "?status=%FF&node_id=",
                     "?node_id=" + "n" * 2000, "?=&&=", "?%ZZ=%ZZ"]),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3).map(
        lambda d: "?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in d.items())),
)

GOOD_AUTH = ({"Authorization": f"Bearer {TOKEN}"}, {"X-RingRift-Auth": TOKEN})
BAD_AUTH = (
    {},
    {"Authorization": "Bearer nope"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"bearer {TOKEN}"},
    {"Authorization": TOKEN},
    {"X-RingRift-Auth": TOKEN[:-1]},
    {"X-RingRift-Auth": TOKEN + "x"},
    {"X-RingRift-Auth": ""},
    {"X-RingRift-Auth": "nope", "Authorization": f"Bearer {TOKEN}"},  # the X- header is the one offered
    {"X-RingRift-Auth": TOKEN.upper()},
)
printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
auths = st.one_of(
    st.sampled_from([(True, h) for h in GOOD_AUTH]),
    st.sampled_from([(True, h) for h in GOOD_AUTH]),
    st.sampled_from([(True, h) for h in GOOD_AUTH]),
    st.sampled_from([(False, h) for h in BAD_AUTH]),
    st.text(printable, max_size=60).map(lambda t: (t == TOKEN, {"Authorization": f"Bearer {t}"})),
    st.text(printable, max_size=60).map(lambda t: (t.strip() == TOKEN, {"X-RingRift-Auth": t})),
)


@dataclass(frozen=True)
class Body:
    data: bytes | None
    content_type: str = "application/json"
    chunked: bool = False
    encoding: str = ""


def _huge(live_max: int, extra: int, chunked: bool) -> Body:
    pad = b"a" * (live_max + extra)
    return Body(b'{"work_id": "' + pad + b'", "holder": "h"}', chunked=chunked)


# A plausible body per route: the fuzzer drops, retypes and adds to these, so many calls get
# past the parsing into the handlers and the state machine (and some succeed).
PLAUSIBLE: dict[str, dict[str, Any]] = {
    "/heartbeat": {"node_id": "peer-1", "host": "127.0.0.1", "port": 9999},
    "/election": {"candidate_id": "peer-1"},
    "/election/lease": {"leader_id": "peer-1", "lease_id": "s_1_x", "lease_duration": 5, "lease_epoch": 1},
    "/election/lease_revoke": {"leader_id": "peer-1", "lease_id": "s_1_x"},
    "/coordinator": {"leader_id": "peer-1", "lease_id": "s_1_x", "lease_epoch": 1, "fence_token": "t",
                     "lease_ttl_seconds": 5},
    "/raft/work": {"work_id": "w1", "work_type": "train", "priority": 5, "config": {"a": 1},
                   "capabilities": ["gpu"], "max_attempts": 3, "timeout_s": 60},
    "/raft/work/claim": {"node_id": "peer-1", "capabilities": ["gpu"], "work_types": ["train"], "lease_s": 30},
    "/raft/work/{work_id}/start": {"claim_token": 1},
    "/raft/work/{work_id}/renew": {"claim_token": 1, "lease_s": 30},
    "/raft/work/{work_id}/complete": {"claim_token": 1, "result": {"loss": 0.1}},
    "/raft/work/{work_id}/fail": {"claim_token": 1, "error": "oom", "retry": True},
    "/raft/jobs": {"job_id": "j1", "job_type": "selfplay", "node_id": "peer-1", "config": {}},
    "/raft/jobs/{job_id}/start": {"node_id": "peer-1"},
    "/raft/jobs/{job_id}/complete": {"result": {"games": 10}},
    "/raft/jobs/{job_id}/fail": {"error": "crashed"},
    "/raft/models": {"name": "m", "version": "1", "uri": "s3://b/m1", "checksum": "abc", "metrics": {"elo": 1}},
    "/raft/models/{name}/{version}/promote": {"stage": "production"},
    "/raft/lock/{name}": {"holder": "peer-1", "ttl_s": 30},
    "DELETE /raft/lock/{name}": {"holder": "peer-1", "fence_token": 1},
    "/raft/lock/{name}/renew": {"holder": "peer-1", "fence_token": 1, "ttl_s": 30},
    "/state/submit": {"command": {"v": 1, "op": "work.add", "rid": "fuzz-r1", "now": 1.0,
                                  "args": {"work_id": "w2", "work_type": "t"}}},
    "/state/read": {"query": "work_get", "args": {"work_id": "w1"}, "consistent": True},
    "/state/handover": {"snapshot": {"format": 1, "counters": {"change": 10 ** 9}}},
}


@st.composite
def near_valid(draw: st.DrawFn, method: str, template: str) -> Body:
    """The route's plausible body with fields missing, mistyped, and unknown ones added."""
    out: dict[str, Any] = {}
    for key, value in PLAUSIBLE.get(f"{method} {template}", PLAUSIBLE.get(template, {})).items():
        if draw(st.integers(0, 5)) == 0:
            continue  # missing
        out[key] = draw(st.one_of(st.just(value), st.just(value), json_values))  # sometimes mistyped
    if draw(st.booleans()):
        out.update(draw(field_objects))  # unknown fields (or known ones overwritten)
    if draw(st.integers(0, 3)) == 0:
        out["request_id"] = draw(st.text(min_size=1, max_size=20) | st.text(max_size=140) | json_scalars)
    return Body(json.dumps(out).encode())


def bodies(max_body: int, method: str, template: str) -> st.SearchStrategy[Body]:
    return st.one_of(
        near_valid(method, template),
        near_valid(method, template),
        near_valid(method, template),
        st.just(Body(None)),
        st.just(Body(b"")),
        st.binary(max_size=300).map(Body),
        st.text(max_size=200).map(lambda t: Body(t.encode("utf-8", "surrogatepass"))),
        json_values.map(lambda v: Body(json.dumps(v).encode())),  # valid JSON, mostly not an object
        field_objects.map(lambda d: Body(json.dumps(d).encode())),  # unknown, missing, mistyped fields
        field_objects.map(lambda d: Body(json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass"))),
        st.tuples(field_objects, st.sampled_from(CONTENT_TYPES)).map(lambda t: Body(json.dumps(t[0]).encode(), t[1])),
        st.sampled_from([  # what Python's json takes but JSON is not, and what breaks parsers
            b'{"priority": NaN}', b'{"ttl_s": Infinity}', b'{"lease_s": -Infinity}', b'{"ttl_s": 1e400}',
            b'{"command": {"v": 1, "op": "work.add", "rid": "r", "args": {"priority": NaN}}}',
            b'{"a": "\xff\xfe"}', b'{"a": "\\ud800"}', b'{"a": 1,}', b"{'a': 1}", b'{"a": 1} trailing', b"\xef\xbb\xbf{}",
            b'{"a": 1, "a": 2}', b"[" * 50 + b"]" * 50, b"[" * 5000 + b"]" * 5000, b"{\"a\":" * 3000 + b"1" + b"}" * 3000,
            b'{"x": ' + b"9" * 5000 + b"}", b"\x00" * 64, b" " * 1000,
        ]).map(Body),
        st.tuples(st.integers(1, 4096), st.booleans()).map(lambda t: _huge(max_body, *t)),
        st.tuples(field_objects, st.sampled_from(["gzip", "deflate"])).map(
            lambda t: Body(_compress(json.dumps(t[0]).encode(), t[1]), encoding=t[1])),
    )


def _compress(data: bytes, encoding: str) -> bytes:
    return gzip.compress(data) if encoding == "gzip" else zlib.compress(data)


@dataclass(frozen=True)
class Call:
    method: str
    target: str
    authorized: bool
    headers: dict[str, str]
    body: Body

    def send(self, live: LiveNode) -> Reply:
        headers = dict(self.headers)
        if self.body.content_type:
            headers["Content-Type"] = self.body.content_type
        if self.body.encoding:
            headers["Content-Encoding"] = self.body.encoding
        return live.request(self.method, self.target, headers=headers, body=self.body.data, chunked=self.body.chunked)

    def __str__(self) -> str:
        size = None if self.body.data is None else len(self.body.data)
        return (f"{self.method} {self.target[:200]} auth={self.authorized} headers={self.headers} "
                f"body[{size}]={(self.body.data or b'')[:120]!r} enc={self.body.encoding!r} chunked={self.body.chunked}")


@st.composite
def calls(draw: st.DrawFn, method: str, template: str, max_body: int) -> Call:
    path = template
    for _ in PLACEHOLDER.findall(template):
        segment = draw(segments)
        path = PLACEHOLDER.sub(lambda _: segment, path, count=1)
    path += draw(st.sampled_from([""] * 12 + ["/", "//", "/..", "/%2e%2e/health", "%00", "/x"]))
    target = path + draw(queries)
    verb = draw(st.sampled_from([method] * 10 + list(METHODS)))
    authorized, headers = draw(auths)
    body = draw(bodies(max_body, method, template))
    return Call(verb, target, authorized, headers, body)


# -- The tests -------------------------------------------------------------------------------------


def test_the_router_lists_every_route_family(live: LiveNode) -> None:
    """The route list the fuzzing is parametrized on is the live node's own router."""
    assert len(ROUTES) >= 30
    live_routes = {(r.method, r.resource.canonical) for r in live.node._runner.app.router.routes()  # type: ignore[union-attr]
                   if r.resource is not None and r.method != "HEAD"}
    assert live_routes == set(ROUTES)
    for path in ("/health", "/heartbeat", "/election", "/coordinator", "/raft/work", "/raft/lock/{name}",
                 "/state/submit", "/state/digest", "/raft/status"):
        assert path in METHODS_BY_PATH, path


@pytest.mark.parametrize("method, template", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_fuzz_route(live: LiveNode, method: str, template: str) -> None:
    @seed(zlib.crc32(f"{method} {template}".encode()))  # a seed of its own per route, fixed
    @settings(parent=settings.get_profile("fuzz"), derandomize=False, max_examples=EXAMPLES_PER_ROUTE)
    @given(call=calls(method, template, live.max_body))
    def fuzz(call: Call) -> None:
        if len(call.method) + len(call.target) + 10 > MAX_REQUEST_LINE:
            return  # past aiohttp's request-line limit: see test_requests_the_http_parser_rejects
        before = live.state_view()
        reply = call.send(live)
        check_reply(live, call.method, call.authorized, reply, str(call))
        if 400 <= reply.status < 500:
            check_unchanged(live, before, live.state_view(), str(call))

    fuzz()


@pytest.mark.parametrize("path", sorted(METHODS_BY_PATH))
def test_mutations_without_the_token_are_401(live: LiveNode, path: str) -> None:
    target = _sample_path(path)
    before = live.state_view()
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for headers in BAD_AUTH:
            reply = live.request(method, target, headers={**headers, "Content-Type": "application/json"},
                                 body=b'{"holder": "h", "ttl_s": 5, "work_id": "w", "work_type": "t"}')
            check_reply(live, method, False, reply, f"{method} {target} {headers}")
    check_unchanged(live, before, live.state_view(), f"unauthenticated calls to {target}")


@pytest.mark.parametrize("path", sorted(METHODS_BY_PATH))
def test_wrong_methods_are_json_405(live: LiveNode, path: str) -> None:
    target = _sample_path(path)
    allowed = _methods_for(target)
    for method in sorted(set(METHODS) - allowed):
        reply = live.request(method, target, headers=dict(GOOD_AUTH[0]))
        check_reply(live, method, True, reply, f"{method} {target}")
        assert reply.status == 405, f"{method} {target}: {reply.status} {reply.body[:200]!r}"
        assert set(reply.headers.get("Allow", "").split(",")) >= {m for m in allowed if m != "HEAD"}, reply.headers


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("method, template", [r for r in ROUTES if r[0] not in OPEN_METHODS],
                         ids=[f"{m} {p}" for m, p in ROUTES if m not in OPEN_METHODS])
def test_bodies_over_the_limit_are_413(live: LiveNode, method: str, template: str, chunked: bool) -> None:
    before = live.state_view()
    body = _huge(live.max_body, 1, chunked)
    reply = Call(method, _sample_path(template), True, dict(GOOD_AUTH[0]), body).send(live)
    check_reply(live, method, True, reply, f"{method} {template} with {live.max_body + 1}+ bytes")
    assert reply.status == 413 and "too large" in reply.json()["error"], (reply.status, reply.body[:200])
    check_unchanged(live, before, live.state_view(), f"{method} {template} too large")


def test_a_compressed_bomb_is_413(live: LiveNode) -> None:
    bomb = gzip.compress(b'{"work_id": "' + b"0" * (20 << 20) + b'"}')
    reply = live.request("POST", "/raft/work", headers={**GOOD_AUTH[0], "Content-Type": "application/json",
                                                         "Content-Encoding": "gzip"}, body=bomb)
    check_reply(live, "POST", True, reply, "gzip bomb")
    assert reply.status == 413


# Sent over a raw socket: aiohttp's client will not send most of these.
PARSER_REJECTS = [
    b"GET /raft/work/" + b"a" * (MAX_REQUEST_LINE + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (MAX_REQUEST_LINE + 10) + b"\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET /raft/work/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /raft/jobs?status=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /heartbeat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
    b"POST /heartbeat HTTP/1.1\r\nHost: x\r\nX-RingRift-Auth: " + TOKEN.encode()
    + b"\r\nContent-Encoding: br\r\nContent-Length: 5\r\n\r\nxxxxx",
    b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    # A body that is not in the Content-Encoding it claims: when the whole body arrives with the
    # headers, aiohttp's parser finds out (its own 400); otherwise our read does (see below).
    b"POST /raft/work HTTP/1.1\r\nHost: x\r\nX-RingRift-Auth: " + TOKEN.encode()
    + b"\r\nContent-Encoding: deflate\r\nContent-Length: 1\r\n\r\n\x00",
    b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
]

# Passed through aiohttp's parser to our middlewares: these must meet every invariant.
RAW_TO_ROUTES = [
    (False, b"POST /heartbeat HTTP/1.1\r\nHost: x\r\nX-RingRift-Auth: \xff\xfe\r\nContent-Length: 2\r\n\r\n{}"),
    (False, b"POST /raft/work HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xc3\xa9\r\nContent-Length: 2\r\n\r\n{}"),
    (True, b"POST /raft/work HTTP/1.1\r\nHost: x\r\nX-RingRift-Auth: " + TOKEN.encode()
     + b"\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nxxxxx"),
    (True, b"POST /raft/work HTTP/1.1\r\nHost: x\r\nX-RingRift-Auth: " + TOKEN.encode()
     + b"\r\nContent-Encoding: deflate\r\nContent-Length: 5\r\n\r\nxxxxx"),
]


def _raw_exchange(port: int, data: bytes) -> tuple[int | None, dict[str, str], bytes]:
    """Send ``data`` as is; read one response (to its Content-Length, or until the server closes)."""
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        while b"\r\n\r\n" not in raw and (chunk := s.recv(65536)):
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(headers.get("Content-Length", "0"))
        while len(body) < length and (chunk := s.recv(65536)):
            body += chunk
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    return (int(match.group(1)) if match else None), headers, body


@pytest.mark.parametrize("data", PARSER_REJECTS, ids=[repr(d[:40]) for d in PARSER_REJECTS])
def test_requests_the_http_parser_rejects(live: LiveNode, data: bytes) -> None:
    """aiohttp answers these itself, before any middleware: a 4xx, text/plain and without
    X-Node-ID (a known aiohttp limit, see the module docstring). The node
    must stay up and its state unchanged."""
    before = live.state_view()
    status, _, body = _raw_exchange(live.port, data)
    assert status is not None and 400 <= status < 500, (status, body[:200])
    assert live.get_json("/health")[0] == 200
    check_unchanged(live, before, live.state_view(), repr(data[:80]))


@pytest.mark.parametrize("authorized, data", RAW_TO_ROUTES, ids=[repr(d[:60]) for _, d in RAW_TO_ROUTES])
def test_raw_requests_that_reach_the_routes(live: LiveNode, authorized: bool, data: bytes) -> None:
    before = live.state_view()
    status, headers, body = _raw_exchange(live.port, data)
    assert status is not None, body[:200]
    check_reply(live, "POST", authorized, Reply(status, headers, body), repr(data[:80]))
    assert status < 500
    check_unchanged(live, before, live.state_view(), repr(data[:80]))


def test_the_node_is_still_the_healthy_leader(live: LiveNode) -> None:
    """Last (pytest keeps file order): after all of the above the node still serves and leads."""
    status, health = live.get_json("/health")
    assert status == 200 and health["alive"] is True
    wait_until(lambda: live.get_json("/status")[1].get("leader_id") == NODE_ID, 15, what="the node leads again")
    status, body = live.get_json("/raft/work")
    assert status == 200 and body["is_leader"] is True
