"""The state verbs' arguments: ``add_state_commands`` adds them to the CLI's subparsers (a bad
value is a usage error naming the flag), ``run_state_command`` runs the chosen verb."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from . import verbs
from .client import DEFAULT_URL, CliError, Client, resolve_token
from .verbs import JOB_STATUSES, MODEL_STAGES, WORK_STATUSES


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

    def list_and_show(group: Any, listing: tuple[str, Callable[..., int]], filters: dict[str, dict[str, Any]],
                      showing: tuple[str, Callable[..., int]], key: str) -> None:
        """``list`` (with ``--<filter>`` flags) and ``show <key>``: every collection's two readers."""
        p = leaf(group, "list", *listing)
        for flag, options in filters.items():
            p.add_argument(f"--{flag}", **options)
        leaf(group, "show", *showing).add_argument(key)

    leaf(sub, "members", "list the members as one node sees them (per source in hybrid mode)", verbs.show_members)
    leaf(sub, "leader", "print the leader and its term (exit 5 when there is none)", verbs.show_leader)

    work = sub.add_parser("work", help="the replicated work queue").add_subparsers(dest="verb", required=True)
    p = leaf(work, "add", "add a work item", verbs.work_add, True)
    p.add_argument("work_id")
    p.add_argument("--type", dest="work_type", required=True, help="the work type (e.g. selfplay)")
    p.add_argument("--priority", type=int, help="higher is claimed first (default 0)")
    p.add_argument("--capability", dest="capabilities", action="append", metavar="CAP",
                   help="a capability the claimer needs (repeatable)")
    p.add_argument("--config", type=_json_object, metavar="JSON", help="the item's config, a JSON object")
    p.add_argument("--max-attempts", type=int)
    p.add_argument("--timeout-s", type=_positive, dest="timeout_s", metavar="S", help="lease of a claim")
    p = leaf(work, "claim", "claim the highest-priority pending item that matches", verbs.work_claim, True)
    p.add_argument("--node", required=True, help="the claiming node's id")
    p.add_argument("--capability", dest="capabilities", action="append", metavar="CAP")
    p.add_argument("--type", dest="work_types", action="append", metavar="TYPE", help="only these types (repeatable)")
    p.add_argument("--lease", type=_positive, metavar="S", help="claim lease in seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the work id and claim token")
    list_and_show(work, ("work items, with the counts by status", verbs.work_list),
                  {"status": {"choices": WORK_STATUSES}, "node": {"help": "only items claimed by this node"},
                   "limit": {"type": int, "default": 100, "help": "at most this many items (default 100)"}},
                  ("one work item", verbs.work_show), "work_id")
    for verb, help in (("start", "mark a claimed item running"), ("renew", "extend a claim's lease"),
                       ("complete", "complete a claimed or running item"), ("fail", "fail it (requeued unless --no-retry)")):
        p = leaf(work, verb, help, verbs.work_transition, True)
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
    p = leaf(jobs, "assign", "assign a job to a node", verbs.job_assign, True)
    p.add_argument("job_id")
    p.add_argument("--node", required=True)
    p.add_argument("--type", dest="job_type", required=True)
    p.add_argument("--config", type=_json_object, metavar="JSON")
    for verb in ("start", "complete", "fail"):
        p = leaf(jobs, verb, f"{verb} a job", verbs.job_transition, True)
        p.add_argument("job_id")
        p.add_argument("--node", help="the node running it (refused when it is another)")
        if verb == "complete":
            p.add_argument("--result", type=_json_value, metavar="JSON")
        if verb == "fail":
            p.add_argument("--error", default="")
    list_and_show(jobs, ("jobs, with the counts by status", verbs.job_list),
                  {"node": {}, "status": {"choices": JOB_STATUSES}}, ("one job", verbs.job_show), "job_id")

    models = sub.add_parser("models", help="the model registry").add_subparsers(dest="verb", required=True)
    p = leaf(models, "register", "register a model version (a candidate)", verbs.model_register, True)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--uri", required=True)
    p.add_argument("--checksum", required=True)
    p.add_argument("--metric", dest="metrics", action="append", type=_metric, metavar="KEY=VALUE")
    _fence_flags(p)
    p = leaf(models, "promote", "move a version to a stage (one production version per name)", verbs.model_promote, True)
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--stage", choices=MODEL_STAGES, default="production")
    _fence_flags(p)
    list_and_show(models, ("every registered version", verbs.model_list),
                  {"name": {}, "stage": {"choices": MODEL_STAGES}},
                  ("one model's versions and its latest per stage", verbs.model_show), "name")

    lock = sub.add_parser("lock", help="fenced training locks").add_subparsers(dest="verb", required=True)
    p = leaf(lock, "acquire", "take a lock; prints its fence token", verbs.lock_acquire, True)
    p.add_argument("name")
    p.add_argument("--holder", required=True)
    p.add_argument("--ttl", type=_positive, metavar="S", help="seconds until it expires unless renewed")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the fence token")
    p = leaf(lock, "renew", "extend a held lock", verbs.lock_renew, True)
    p.add_argument("name")
    p.add_argument("--holder", required=True)
    p.add_argument("--fence-token", type=_token_int, required=True)
    p.add_argument("--ttl", type=_positive, metavar="S")
    p = leaf(lock, "release", "release a held lock", verbs.lock_release, True)
    p.add_argument("name")
    p.add_argument("--holder", required=True)
    p.add_argument("--fence-token", type=_token_int, required=True)
    leaf(lock, "list", "the held locks", verbs.lock_list)


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
