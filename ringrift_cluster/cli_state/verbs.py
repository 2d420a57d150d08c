"""The state verbs: each one calls the node's HTTP API and prints its answer as a table (or, with
``--json``, as the node's JSON)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable, Sequence

from .client import EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_USAGE, CliError, Client

WORK_STATUSES = ("pending", "claimed", "running", "completed", "failed")
JOB_STATUSES = ("assigned", "running", "completed", "failed")
MODEL_STAGES = ("candidate", "production", "archived")


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


def show_members(client: Client, args: argparse.Namespace) -> int:
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


def show_leader(client: Client, args: argparse.Namespace) -> int:
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


def work_add(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", "/raft/work", {
        "work_id": args.work_id, "work_type": args.work_type, "priority": args.priority,
        "capabilities": args.capabilities, "config": args.config, "max_attempts": args.max_attempts,
        "timeout_s": args.timeout_s})
    return _emit(args, answer, lambda: f"added {answer.get('work_id')} ({answer.get('status')})")


def work_claim(client: Client, args: argparse.Namespace) -> int:
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


def work_show(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, f"/raft/work/{args.work_id}")
    item = answer.get("item") or {}
    return _emit(args, answer, lambda: "\n".join(f"{k:<12} {_cell(v)}" for k, v in item.items()))


def work_list(client: Client, args: argparse.Namespace) -> int:
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


def _transition(client: Client, args: argparse.Namespace, collection: str, item_id: str, body: dict[str, Any],
                describe: Callable[[dict[str, Any]], str]) -> int:
    """``POST /raft/<collection>/<id>/<verb>``; ``complete`` carries its result, ``fail`` its error."""
    if args.verb == "complete":
        body["result"] = args.result
    elif args.verb == "fail":
        body["error"] = args.error
    answer = _write(client, args, "POST", f"/raft/{collection}/{item_id}/{args.verb}", body)
    return _emit(args, answer, lambda: describe(answer))


def work_transition(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"claim_token": args.claim_token}
    if args.verb == "renew":
        body["lease_s"] = args.lease
    elif args.verb == "fail":
        body["retry"] = args.retry

    def describe(answer: dict[str, Any]) -> str:
        extra = f", expires in {_in(answer.get('expires_at'), answer.get('clock'))}" if answer.get("expires_at") else ""
        return f"{args.work_id}: {answer.get('status')}{extra}"

    return _transition(client, args, "work", args.work_id, body, describe)


# -- jobs ------------------------------------------------------------------------------------


def job_assign(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", "/raft/jobs", {
        "job_id": args.job_id, "node_id": args.node, "job_type": args.job_type, "config": args.config})
    return _emit(args, answer, lambda: f"{args.job_id} assigned to {args.node} ({answer.get('status')})")


def job_transition(client: Client, args: argparse.Namespace) -> int:
    return _transition(client, args, "jobs", args.job_id, {"node_id": args.node},
                       lambda answer: f"{args.job_id}: {answer.get('status')}")


_JOB_COLUMNS = ("job_id", "node_id", "job_type", "status", "error")


def job_list(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, "/raft/jobs", node_id=args.node, status=args.status)
    stats = answer.get("stats") or {}
    return _emit(args, answer, lambda: "  ".join(f"{s} {stats.get(s, 0)}" for s in JOB_STATUSES) + "\n\n" + (
        table([c.upper() for c in _JOB_COLUMNS], [[j.get(c) for c in _JOB_COLUMNS] for j in answer.get("jobs") or []])
        if answer.get("jobs") else "(no jobs)"))


def job_show(client: Client, args: argparse.Namespace) -> int:
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


def model_register(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", "/raft/models", {
        "name": args.name, "version": args.version, "uri": args.uri, "checksum": args.checksum,
        "metrics": dict(args.metrics) if args.metrics else None, "fence": _fence(args)})
    model = answer.get("model") or {}
    verb = "registered" if answer.get("created", True) else "already registered"
    return _emit(args, answer, lambda: f"{verb} {args.name} {args.version} ({model.get('stage')})")


def model_promote(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", f"/raft/models/{args.name}/{args.version}/promote",
                    {"stage": args.stage, "fence": _fence(args)})
    archived = answer.get("archived") or []
    tail = f"; archived {', '.join(str(a) for a in archived)}" if archived else ""
    return _emit(args, answer, lambda: f"{args.name} {args.version}: {args.stage}{tail}")


_MODEL_COLUMNS = ("name", "version", "stage", "uri", "checksum", "metrics")


def model_list(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, "/raft/models")
    models = [m for m in answer.get("models") or []
              if (args.name is None or m.get("name") == args.name) and (args.stage is None or m.get("stage") == args.stage)]
    answer = {**answer, "models": models}
    return _emit(args, answer, lambda: table([c.upper() for c in _MODEL_COLUMNS],
                                             [[m.get(c) for c in _MODEL_COLUMNS] for m in models])
                 if models else "(no models)")


def model_show(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, f"/raft/models/{args.name}")
    latest = answer.get("latest") or {}

    def human() -> str:
        rows = [[v.get(c) for c in _MODEL_COLUMNS] for v in answer.get("versions") or []]
        tops = "  ".join(f"{stage} {(m or {}).get('version') or '-'}" for stage, m in latest.items())
        return f"{table([c.upper() for c in _MODEL_COLUMNS], rows)}\n\nlatest: {tops}"

    return _emit(args, answer, human)


# -- locks -----------------------------------------------------------------------------------


def lock_acquire(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", f"/raft/lock/{args.name}", {"holder": args.holder, "ttl_s": args.ttl})
    if args.quiet and not args.json:
        print(answer.get("fence_token"))
        return EXIT_OK
    again = " (renewed: already held by it)" if answer.get("renewed") else ""
    return _emit(args, answer, lambda: f"{args.name} acquired by {args.holder}{again}: fence token "
                                       f"{answer.get('fence_token')}, expires in {answer.get('expires_in_s')}s")


def lock_renew(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "POST", f"/raft/lock/{args.name}/renew",
                    {"holder": args.holder, "fence_token": args.fence_token, "ttl_s": args.ttl})
    return _emit(args, answer, lambda: f"{args.name} renewed for {args.holder}: fence token "
                                       f"{answer.get('fence_token', args.fence_token)}, expires in "
                                       f"{_in(answer.get('expires_at'), answer.get('clock'))}")


def lock_release(client: Client, args: argparse.Namespace) -> int:
    answer = _write(client, args, "DELETE", f"/raft/lock/{args.name}",
                    {"holder": args.holder, "fence_token": args.fence_token})
    return _emit(args, answer, lambda: f"{args.name} released by {args.holder}")


_LOCK_COLUMNS = ("name", "holder", "fence_token", "ttl_s", "expires_at")


def lock_list(client: Client, args: argparse.Namespace) -> int:
    answer = _read(client, args, "/raft/locks")
    locks = answer.get("locks") or []
    return _emit(args, answer, lambda: table(["NAME", "HOLDER", "FENCE_TOKEN", "TTL_S", "EXPIRES_IN"],
                                             [[lk.get("name"), lk.get("holder"), lk.get("fence_token"), lk.get("ttl_s"),
                                               _in(lk.get("expires_at"))] for lk in locks])
                 if locks else "(no locks held)")
