"""The state verbs of ``ringrift-cluster``, over a node's HTTP API (in the habits of etcdctl and
consul): ``members``, ``leader``, ``work``, ``jobs``, ``models`` and ``lock``.

Every verb takes ``--url`` (default ``$RINGRIFT_URL``, else ``http://127.0.0.1:8770``), the token
(``--token``, ``--token-file``, ``$RINGRIFT_CLUSTER_AUTH_TOKEN``, ``$RINGRIFT_CLUSTER_AUTH_TOKEN_FILE``)
and ``--json``; writes take ``--request-id`` (a retry with the same id is applied at most once).
Errors are one line on stderr; the exit code says what kind (see ``EXIT_*``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence

DEFAULT_URL = "http://127.0.0.1:8770"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAUTHORIZED, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4, 5
WORK_STATUSES = ("pending", "claimed", "running", "completed", "failed")
JOB_STATUSES = ("assigned", "running", "completed", "failed")
MODEL_STAGES = ("candidate", "production", "archived")


class CliError(Exception):
    """A failure to report as one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE, answer: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.answer = answer  # the node's JSON answer, when there was one


# -- HTTP ------------------------------------------------------------------------------------


class Client:
    """JSON over HTTP to one node; every failure becomes a CliError with the right exit code."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CliError(f"--url: expected http://HOST:PORT, got {url!r}", EXIT_USAGE)
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.call("GET", path, query=query)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, Any] | None = None) -> dict[str, Any]:
        target = self.url + urllib.parse.quote(path, safe="/")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(target, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise CliError(f"cannot reach {self.url}: {reason}", EXIT_FAILURE) from None
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"error": raw.decode(errors="replace")[:200]}
        if not isinstance(answer, dict):
            answer = {"value": answer}
        if status >= 400:
            error = _http_error(method, path, status, answer)
            error.answer = answer
            raise error
        return answer


def _http_error(method: str, path: str, status: int, answer: dict[str, Any]) -> CliError:
    reason = answer.get("message") or answer.get("error") or f"HTTP {status}"
    what = f"{method} {path}"
    if status == 401:
        return CliError(f"{what}: unauthorized (401): pass --token, --token-file or set "
                        "RINGRIFT_CLUSTER_AUTH_TOKEN", EXIT_UNAUTHORIZED)
    if status == 503:
        leader = answer.get("leader")
        hint = f" (leader: {leader})" if leader else ""
        outcome = " outcome unknown: retry with the same --request-id;" if answer.get("outcome") == "unknown" else ""
        kind = "timeout" if answer.get("error") == "timeout" else "no leader"
        return CliError(f"{what}: {kind} (503):{outcome} {reason}{hint}", EXIT_UNAVAILABLE)
    if status == 400:
        return CliError(f"{what}: bad request (400): {reason}", EXIT_USAGE)
    if status == 404:
        return CliError(f"{what}: not found (404): {reason}", EXIT_REFUSED)
    if status == 409:
        error = answer.get("error")
        return CliError(f"{what}: refused (409{', ' + error if error else ''}): {reason}", EXIT_REFUSED)
    return CliError(f"{what}: HTTP {status}: {reason}", EXIT_FAILURE)


def resolve_token(args: argparse.Namespace, env: Any = os.environ) -> str | None:
    """--token, else --token-file, else $RINGRIFT_CLUSTER_AUTH_TOKEN, else
    $RINGRIFT_CLUSTER_AUTH_TOKEN_FILE; None when none is given (reads need none)."""
    if args.token:
        return str(args.token)
    path, label = args.token_file, "--token-file"
    if not path and env.get("RINGRIFT_CLUSTER_AUTH_TOKEN"):
        return str(env["RINGRIFT_CLUSTER_AUTH_TOKEN"])
    if not path:
        path, label = env.get("RINGRIFT_CLUSTER_AUTH_TOKEN_FILE"), "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE"
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"{label}: cannot read {path}: {getattr(e, 'strerror', None) or e}", EXIT_USAGE) from None
    if not value:
        raise CliError(f"{label}: {path} is empty", EXIT_USAGE)
    return value


# -- Argument types (a bad value is a usage error naming the flag) -------------------------------


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({e})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a plain string is a fine result


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _token_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer token, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative token, got {text!r}")
    return value


def _request_id(text: str) -> str:
    if not 0 < len(text) <= 128:
        raise argparse.ArgumentTypeError(f"expected 1 to 128 characters, got {len(text)}")
    return text


def _metric(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, _json_value(value)


# -- The parser ------------------------------------------------------------------------------


def _common(writes: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument("--url", default=os.environ.get("RINGRIFT_URL") or DEFAULT_URL,
                   help=f"a node's API URL (default: $RINGRIFT_URL, else {DEFAULT_URL})")
    g.add_argument("--token", help="API token (default: $RINGRIFT_CLUSTER_AUTH_TOKEN)")
    g.add_argument("--token-file", help="a file holding the token (default: $RINGRIFT_CLUSTER_AUTH_TOKEN_FILE)")
    g.add_argument("--timeout", type=_positive, default=10.0, help="seconds to wait for an answer (default 10)")
    g.add_argument("--json", action="store_true", help="print the node's JSON answer (for scripts)")
    if writes:
        g.add_argument("--request-id", type=_request_id,
                       help="makes a retry safe: the cluster applies one request id at most once")
    else:
        g.add_argument("--consistent", action="store_true", help="a linearizable read (asks the leader)")
    return p


def add_state_commands(sub: Any) -> None:
    """Add ``members``, ``leader``, ``work``, ``jobs``, ``models`` and ``lock`` to ``sub``."""
    read, write = _common(False), _common(True)

    def leaf(group: Any, name: str, help: str, fn: Callable[..., int], writes: bool = False) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help, description=help, parents=[write if writes else read])
        p.set_defaults(state_fn=fn)
        return p

    leaf(sub, "members", "list the members as one node sees them (per source in hybrid mode)", _members)
    leaf(sub, "leader", "print the leader and its term (exit 5 when there is none)", _leader)

    work = sub.add_parser("work", help="the replicated work queue").add_subparsers(dest="verb", required=True)
    p = leaf(work, "add", "add a work item", _work_add, True)
    p.add_argument("work_id")
    p.add_argument("--type", dest="work_type", required=True, help="the work type (e.g. selfplay)")
    p.add_argument("--priority", type=int, help="higher is claimed first (default 0)")
    p.add_argument("--capability", dest="capabilities", action="append", metavar="CAP",
                   help="a capability the claimer needs (repeatable)")
    p.add_argument("--config", type=_json_object, metavar="JSON", help="the item's config, a JSON object")
    p.add_argument("--max-attempts", type=int)
    p.add_argument("--timeout-s", type=_positive, dest="timeout_s", metavar="S", help="lease of a claim")
    p = leaf(work, "claim", "claim the highest-priority pending item that matches", _work_claim, True)
    p.add_argument("--node", required=True, help="the claiming node's id")
    p.add_argument("--capability", dest="capabilities", action="append", metavar="CAP")
    p.add_argument("--type", dest="work_types", action="append", metavar="TYPE", help="only these types (repeatable)")
    p.add_argument("--lease", type=_positive, metavar="S", help="claim lease in seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the work id and claim token")
    p = leaf(work, "show", "one work item", _work_show)
    p.add_argument("work_id")
    p = leaf(work, "list", "work items, with the counts by status", _work_list)
    p.add_argument("--status", choices=WORK_STATUSES)
    p.add_argument("--node", help="only items claimed by this node")
    p.add_argument("--limit", type=int, default=100, help="at most this many items (default 100)")
    for verb, help in (("start", "mark a claimed item running"), ("renew", "extend a claim's lease"),
                       ("complete", "complete a claimed or running item"), ("fail", "fail it (requeued unless --no-retry)")):
        p = leaf(work, verb, help, _work_transition, True)
        p.add_argument("work_id")
        p.add_argument("--claim-token", dest="claim_token", type=_token_int, required=True,
                       help="the claim token `work claim` returned")
        if verb == "renew":
            p.add_argument("--lease", type=_positive, metavar="S")
        if verb == "complete":
            p.add_argument("--result", type=_json_value, metavar="JSON", help="a JSON value (or a plain string)")
        if verb == "fail":
            p.add_argument("--error", default="", help="why it failed")
            p.add_argument("--no-retry", dest="retry", action="store_false", help="do not requeue it")

    jobs = sub.add_parser("jobs", help="job assignments").add_subparsers(dest="verb", required=True)
    p = leaf(jobs, "assign", "assign a job to a node", _job_assign, True)
    p.add_argument("job_id")
    p.add_argument("--node", required=True)
    p.add_argument("--type", dest="job_type", required=True)
    p.add_argument("--config", type=_json_object, metavar="JSON")
    for verb in ("start", "complete", "fail"):
        p = leaf(jobs, verb, f"{verb} a job", _job_transition, True)
        p.add_argument("job_id")
        p.add_argument("--node", help="the node running it (refused when it is another)")
        if verb == "complete":
            p.add_argument("--result", type=_json_value, metavar="JSON")
        if verb == "fail":
            p.add_argument("--error", default="")
    p = leaf(jobs, "list", "jobs, with the counts by status", _job_list)
    p.add_argument("--node")
    p.add_argument("--status", choices=JOB_STATUSES)
    p = leaf(jobs, "show", "one job", _job_show)
    p.add_argument("job_id")

    models = sub.add_parser("models", help="the model registry").add_subparsers(dest="verb", required=True)
    p = leaf(models, "register", "register a model version (a candidate)", _model_register, True)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--uri", required=True)
    p.add_argument("--checksum", required=True)
    p.add_argument("--metric", dest="metrics", action="append", type=_metric, metavar="KEY=VALUE")
    _fence_flags(p)
    p = leaf(models, "promote", "move a version to a stage (one production version per name)", _model_promote, True)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--stage", choices=MODEL_STAGES, default="production")
    _fence_flags(p)
    p = leaf(models, "list", "every registered version", _model_list)
    p.add_argument("--name")
    p.add_argument("--stage", choices=MODEL_STAGES)
    p = leaf(models, "show", "one model's versions and its latest per stage", _model_show)
    p.add_argument("name")

    lock = sub.add_parser("lock", help="fenced training locks").add_subparsers(dest="verb", required=True)
    p = leaf(lock, "acquire", "take a lock; prints its fence token", _lock_acquire, True)
    p.add_argument("name")
    p.add_argument("--holder", required=True)
    p.add_argument("--ttl", type=_positive, metavar="S", help="seconds until it expires unless renewed")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the fence token")
    p = leaf(lock, "renew", "extend a held lock", _lock_renew, True)
    p.add_argument("name")
    p.add_argument("--holder", required=True)
    p.add_argument("--fence-token", type=_token_int, required=True)
    p.add_argument("--ttl", type=_positive, metavar="S")
    p = leaf(lock, "release", "release a held lock", _lock_release, True)
    p.add_argument("name")
    p.add_argument("--holder", required=True)
    p.add_argument("--fence-token", type=_token_int, required=True)
    leaf(lock, "list", "the held locks", _lock_list)


def _fence_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fence-lock", metavar="LOCK", help="refused unless LOCK is held with --fence-token")
    p.add_argument("--fence-token", type=_token_int)


def run_state_command(args: argparse.Namespace) -> int:
    """Run the verb; a CliError becomes one line on stderr and its exit code."""
    try:
        client = Client(args.url, resolve_token(args), args.timeout)
        return int(args.state_fn(client, args))
    except CliError as e:
        if getattr(args, "json", False) and e.answer is not None:
            print(json.dumps(e.answer, indent=2, sort_keys=True))  # scripts see the node's reason too
        print(f"ringrift-cluster: {e}", file=sys.stderr)
        return e.code


# -- Output helpers --------------------------------------------------------------------------


def _emit(args: argparse.Namespace, answer: Any, human: Callable[[], str]) -> int:
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        text = human()
        if text:
            print(text)
    return EXIT_OK


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else "-"
    return str(value)


def _in(expires_at: Any, clock: Any = None) -> str:
    if not isinstance(expires_at, (int, float)):
        return "-"
    now = clock if isinstance(clock, (int, float)) else time.time()
    return f"{max(0.0, expires_at - now):.0f}s"


def _write(client: Client, args: argparse.Namespace, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if v is not None}
    if getattr(args, "request_id", None):
        body["request_id"] = args.request_id
    return client.call(method, path, body)


def _read(client: Client, args: argparse.Namespace, path: str, **query: Any) -> dict[str, Any]:
    if getattr(args, "consistent", False):
        query["consistent"] = "true"
    return client.get(path, **query)


# -- members / leader ------------------------------------------------------------------------


def _members(client: Client, args: argparse.Namespace) -> int:
    status = client.get("/status")
    sources = (status.get("membership") or {}).get("sources") or {}
    per_source: dict[str, dict[str, str]] = {}
    if "heartbeat" in sources:
        per_source["heartbeat"] = {n: p.get("state", "?") for n, p in (sources["heartbeat"].get("peers") or {}).items()}
    if "swim" in sources:
        swim = client.get("/swim/members")
        per_source["swim"] = {m.get("id"): m.get("state", "?") for m in swim.get("members", []) if m.get("id")}
    if args.json:
        return _emit(args, {"node_id": status.get("node_id"), "peers": status.get("peers", {}),
                            "per_source": per_source, "leader_id": status.get("leader_id")}, str)
    names = sorted(per_source)
    rows = [[status.get("node_id"), "alive (self)", "", status.get("role"), *["-" for _ in names], ""]]
    for node_id, peer in sorted((status.get("peers") or {}).items()):
        rows.append([node_id, peer.get("state"), peer.get("seconds_since_heartbeat"), peer.get("role"),
                     *[per_source[s].get(node_id, "-") for s in names], f"{peer.get('host')}:{peer.get('port')}"])
    print(table(["NODE", "STATE", "SILENT_S", "ROLE", *[s.upper() for s in names], "ADDRESS"], rows))
    counts = status.get("quorum") or {}
    print(f"\nleader {status.get('leader_id') or '-'}  term {status.get('leader_term')}  quorum "
          f"{counts.get('alive_voters')}/{counts.get('total_voters')} ({counts.get('health')})  "
          f"as seen by {status.get('node_id')}")
    return EXIT_OK


def _leader(client: Client, args: argparse.Namespace) -> int:
    status = client.get("/status")
    answer = {k: status.get(k) for k in ("leader_id", "leader_term", "fence_token", "lease_expires", "node_id")}
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    if not status.get("leader_id"):
        raise CliError(f"no leader (as seen by {status.get('node_id')}, term {status.get('leader_term')})",
                       EXIT_UNAVAILABLE)
    if not args.json:
        print(f"{status['leader_id']}  term {status.get('leader_term')}  (as seen by {status.get('node_id')})")
    return EXIT_OK


# -- work ------------------------------------------------------------------------------------


def _work_add(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", "/raft/work", {
        "work_id": args.work_id, "work_type": args.work_type, "priority": args.priority,
        "capabilities": args.capabilities, "config": args.config, "max_attempts": args.max_attempts,
        "timeout_s": args.timeout_s})
    return _emit(args, answer, lambda: f"added {answer.get('work_id')} ({answer.get('status')})")


def _work_claim(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", "/raft/work/claim", {
        "node_id": args.node, "capabilities": args.capabilities, "work_types": args.work_types, "lease_s": args.lease})
    item = answer.get("item")
    if item is None and not args.json:
        print(f"ringrift-cluster: no pending work matches (node {args.node})", file=sys.stderr)
        return EXIT_OK
    if args.quiet and not args.json:
        print(f"{item['work_id']} {answer.get('claim_token')}")
        return EXIT_OK
    return _emit(args, answer, lambda: (
        f"claimed {item['work_id']} ({item.get('work_type')}, priority {item.get('priority')}) for {args.node}: "
        f"claim token {answer.get('claim_token')}, lease expires in {_in(answer.get('expires_at'), answer.get('clock'))}"))


_WORK_COLUMNS = ("work_id", "work_type", "priority", "status", "claimed_by", "claim_token", "attempts", "expires_at")


def _work_row(item: dict[str, Any]) -> list[Any]:
    return [item.get(c) if c != "expires_at" else _in(item.get(c)) if item.get(c) else None for c in _WORK_COLUMNS]


def _work_show(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, f"/raft/work/{args.work_id}")
    item = answer.get("item") or {}
    return _emit(args, answer, lambda: "\n".join(f"{k:<12} {_cell(v)}" for k, v in item.items()))


def _work_list(client: Client, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError(f"--limit: expected a positive number, got {args.limit}", EXIT_USAGE)
    answer = _read(client, args, "/raft/queue", status=args.status, node_id=args.node, limit=args.limit)
    stats = answer.get("stats") or {}

    def human() -> str:
        counts = "  ".join(f"{s} {stats.get(s, 0)}" for s in WORK_STATUSES)
        items = answer.get("items") or []
        more = f"\n(first {len(items)} shown; --limit for more)" if answer.get("truncated") else ""
        listing = table([c.upper() for c in _WORK_COLUMNS[:-1]] + ["EXPIRES_IN"], [_work_row(i) for i in items]) \
            if items else "(no items)"
        return f"{counts}  (total {stats.get('total', 0)})\n\n{listing}{more}"

    return _emit(args, answer, human)


def _work_transition(client: Client, args: argparse.Namespace) -> int:
    verb = args.verb
    body: dict[str, Any] = {"claim_token": args.claim_token}
    if verb == "renew":
        body["lease_s"] = args.lease
    elif verb == "complete":
        body["result"] = args.result
    elif verb == "fail":
        body.update(error=args.error, retry=args.retry)
    answer = _write(client, args, "POST", f"/raft/work/{args.work_id}/{verb}", body)
    extra = f", expires in {_in(answer.get('expires_at'), answer.get('clock'))}" if answer.get("expires_at") else ""
    return _emit(args, answer, lambda: f"{args.work_id}: {answer.get('status')}{extra}")


# -- jobs ------------------------------------------------------------------------------------


def _job_assign(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", "/raft/jobs", {
        "job_id": args.job_id, "node_id": args.node, "job_type": args.job_type, "config": args.config})
    return _emit(args, answer, lambda: f"{args.job_id} assigned to {args.node} ({answer.get('status')})")


def _job_transition(client: Client, args: argparse.Namespace) -> int:
    verb = args.verb
    body: dict[str, Any] = {"node_id": args.node}
    if verb == "complete":
        body["result"] = args.result
    elif verb == "fail":
        body["error"] = args.error
    answer = _write(client, args, "POST", f"/raft/jobs/{args.job_id}/{verb}", body)
    return _emit(args, answer, lambda: f"{args.job_id}: {answer.get('status')}")


_JOB_COLUMNS = ("job_id", "node_id", "job_type", "status", "error")


def _job_list(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, "/raft/jobs", node_id=args.node, status=args.status)
    stats = answer.get("stats") or {}
    return _emit(args, answer, lambda: "  ".join(f"{s} {stats.get(s, 0)}" for s in JOB_STATUSES) + "\n\n" + (
        table([c.upper() for c in _JOB_COLUMNS], [[j.get(c) for c in _JOB_COLUMNS] for j in answer.get("jobs") or []])
        if answer.get("jobs") else "(no jobs)"))


def _job_show(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, "/raft/jobs")
    job = next((j for j in answer.get("jobs") or [] if j.get("job_id") == args.job_id), None)
    if job is None:
        raise CliError(f"job {args.job_id!r} not found (as seen by {answer.get('node_id')})", EXIT_REFUSED)
    return _emit(args, {"job": job, "node_id": answer.get("node_id")},
                 lambda: "\n".join(f"{k:<12} {_cell(v)}" for k, v in job.items()))


# -- models ----------------------------------------------------------------------------------


def _fence(args: argparse.Namespace) -> dict[str, Any] | None:
    if (args.fence_lock is None) != (args.fence_token is None):
        raise CliError("--fence-lock and --fence-token go together", EXIT_USAGE)
    return None if args.fence_lock is None else {"lock": args.fence_lock, "token": args.fence_token}


def _model_register(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", "/raft/models", {
        "name": args.name, "version": args.version, "uri": args.uri, "checksum": args.checksum,
        "metrics": dict(args.metrics) if args.metrics else None, "fence": _fence(args)})
    model = answer.get("model") or {}
    verb = "registered" if answer.get("created", True) else "already registered"
    return _emit(args, answer, lambda: f"{verb} {args.name} {args.version} ({model.get('stage')})")


def _model_promote(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", f"/raft/models/{args.name}/{args.version}/promote",
                    {"stage": args.stage, "fence": _fence(args)})
    archived = answer.get("archived") or []
    tail = f"; archived {', '.join(str(a) for a in archived)}" if archived else ""
    return _emit(args, answer, lambda: f"{args.name} {args.version}: {args.stage}{tail}")


_MODEL_COLUMNS = ("name", "version", "stage", "uri", "checksum", "metrics")


def _model_list(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, "/raft/models")
    models = [m for m in answer.get("models") or []
              if (args.name is None or m.get("name") == args.name) and (args.stage is None or m.get("stage") == args.stage)]
    answer = {**answer, "models": models}
    return _emit(args, answer, lambda: table([c.upper() for c in _MODEL_COLUMNS],
                                             [[m.get(c) for c in _MODEL_COLUMNS] for m in models])
                 if models else "(no models)")


def _model_show(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, f"/raft/models/{args.name}")
    latest = answer.get("latest") or {}

    def human() -> str:
        rows = [[v.get(c) for c in _MODEL_COLUMNS] for v in answer.get("versions") or []]
        tops = "  ".join(f"{stage} {(m or {}).get('version') or '-'}" for stage, m in latest.items())
        return f"{table([c.upper() for c in _MODEL_COLUMNS], rows)}\n\nlatest: {tops}"

    return _emit(args, answer, human)


# -- locks -----------------------------------------------------------------------------------


def _lock_acquire(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", f"/raft/lock/{args.name}", {"holder": args.holder, "ttl_s": args.ttl})
    if args.quiet and not args.json:
        print(answer.get("fence_token"))
        return EXIT_OK
    again = " (renewed: already held by it)" if answer.get("renewed") else ""
    return _emit(args, answer, lambda: f"{args.name} acquired by {args.holder}{again}: fence token "
                                       f"{answer.get('fence_token')}, expires in {answer.get('expires_in_s')}s")


def _lock_renew(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", f"/raft/lock/{args.name}/renew",
                    {"holder": args.holder, "fence_token": args.fence_token, "ttl_s": args.ttl})
    return _emit(args, answer, lambda: f"{args.name} renewed for {args.holder}: fence token "
                                       f"{answer.get('fence_token', args.fence_token)}, expires in "
                                       f"{_in(answer.get('expires_at'), answer.get('clock'))}")


def _lock_release(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "DELETE", f"/raft/lock/{args.name}",
                    {"holder": args.holder, "fence_token": args.fence_token})
    return _emit(args, answer, lambda: f"{args.name} released by {args.holder}")


_LOCK_COLUMNS = ("name", "holder", "fence_token", "ttl_s", "expires_at")


def _lock_list(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, "/raft/locks")
    locks = answer.get("locks") or []
    return _emit(args, answer, lambda: table(["NAME", "HOLDER", "FENCE_TOKEN", "TTL_S", "EXPIRES_IN"],
                                             [[lk.get("name"), lk.get("holder"), lk.get("fence_token"), lk.get("ttl_s"),
                                               _in(lk.get("expires_at"))] for lk in locks])
                 if locks else "(no locks held)")
