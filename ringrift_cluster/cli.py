"""``ringrift-cluster``: run a node, look at one, read and write the cluster's state, or demo a local cluster.

Exit codes: 0 ok, 1 runtime failure (e.g. a port in use, a node unreachable), 2 usage or config
error (a 400 from the node too); the state verbs add 3 refused (409, 404: the node's reason),
4 unauthorized (401) and 5 no leader or timeout (503). The message goes to stderr as one line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, NoReturn, Sequence

from .cli_state import DEFAULT_URL, add_state_commands, run_state_command
from .errors import ClusterError, ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (with where to find help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ringrift-cluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run one node until SIGINT/SIGTERM")
    _add_node_flags(run)
    run.add_argument("--parent-pid", type=int, metavar="PID",
                     help="stop (gracefully) when process PID is no longer this node's parent (the demo sets it)")

    check = sub.add_parser("check-config", help="validate a config and print what it resolves to")
    _add_node_flags(check)

    status = sub.add_parser("status", help="print one node's view of the cluster")
    status.add_argument("--url", default=os.environ.get("RINGRIFT_URL") or DEFAULT_URL,
                        help=f"the node's API URL (default: $RINGRIFT_URL, else {DEFAULT_URL})")
    status.add_argument("--json", action="store_true", help="print the raw /status JSON")
    status.add_argument("--timeout", type=float, default=5.0)

    demo = sub.add_parser("demo", help="start N real nodes on loopback and watch them")
    demo.add_argument("--nodes", type=int, default=5)
    demo.add_argument("--base-port", type=int, default=8770, help="node i's API listens on base-port + i")
    demo.add_argument("--data-dir", help="keep the generated cluster.yaml, node data and logs here")
    demo.add_argument("--kill-leader-after", type=float, metavar="S", help="SIGKILL the leader after S seconds")
    demo.add_argument("--duration", type=float, metavar="S", help="stop by itself after S seconds")
    demo.add_argument("--preset", default="local", help="timing preset for the nodes (default: local)")
    demo.add_argument("--membership-mode",
                      help="http | swim | hybrid (default: $RINGRIFT_MEMBERSHIP_MODE, else swim)")
    demo.add_argument("--consensus-mode",
                      help="bully | raft | hybrid (default: $RINGRIFT_CONSENSUS_MODE, else raft)")
    demo.add_argument("--compare", action="store_true",
                      help="a legacy (http+bully) and a swim+raft cluster side by side, both leaders killed at once")
    demo.add_argument("--auth-token", help="the cluster's API token (default: $RINGRIFT_CLUSTER_AUTH_TOKEN, "
                                           "else --auth-token-file, else a generated one)")
    demo.add_argument("--auth-token-file", help="a file holding the token (default: $RINGRIFT_CLUSTER_AUTH_TOKEN_FILE)")
    demo.add_argument("--sd-file", metavar="PATH",
                      help="every node keeps this Prometheus file_sd targets file (the whole membership view, "
                           "written atomically), so it stays current whichever node dies")
    demo.add_argument("--keep-going", action="store_true",
                      help="when a node fails to start, show it as failed instead of stopping the demo")
    add_state_commands(sub)
    return parser


def _add_node_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="cluster YAML (default: $RINGRIFT_CONFIG, else one node on loopback)")
    p.add_argument("--node-id", help="this node's id (a key of hosts)")
    p.add_argument("--port", type=int, help="API port (default: the node's p2p_port, else 8770)")
    p.add_argument("--bind-host", help="API bind address")
    p.add_argument("--preset", help="timing preset: lan | local")
    p.add_argument("--membership-mode", help="http | swim | hybrid")
    p.add_argument("--consensus-mode", help="bully | raft | hybrid")
    p.add_argument("--data-dir", help="where this node keeps its state")
    p.add_argument("--log-level", help="debug | info | warning | error")
    p.add_argument("--log-format", help="auto | json | console")
    p.add_argument("--sd-file", metavar="PATH",
                   help="keep a Prometheus file_sd targets file here (sets discovery.file_path, turns file_sd on)")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "node_id": args.node_id, "api.port": args.port, "api.bind_host": args.bind_host,
        "preset": args.preset, "membership_mode": args.membership_mode,
        "consensus_mode": args.consensus_mode, "data_dir": args.data_dir,
        "log_level": args.log_level, "log_format": args.log_format,
        # A path typed on the command line is the shell's, not the data dir's.
        "discovery.file_path": os.path.join(os.getcwd(), args.sd_file) if args.sd_file else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(args, "state_fn"):
        return run_state_command(args)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "status":
            return _status(args)
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(args)
    except ConfigError as e:
        print(f"ringrift-cluster: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ClusterError as e:
        print(f"ringrift-cluster: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .node import ClusterNode, run_until_signalled
    from .observability import configure_logging

    if args.parent_pid is not None:
        from .lifeline import exit_with_parent

        exit_with_parent(args.parent_pid)
    config = load_config(args.config, overrides=_overrides(args))
    configure_logging(config.log_level, config.log_format)
    node = ClusterNode(config)
    asyncio.run(run_until_signalled(node))
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    from .config import load_config
    from .discovery import targets_path

    config = load_config(args.config, overrides=_overrides(args))
    print(json.dumps({
        "node_id": config.node_id, "preset": config.preset,
        "membership_mode": config.membership_mode.value, "consensus_mode": config.consensus_mode.value,
        "membership_backends": list(config.membership_backends), "leader_backend": config.leader_backend,
        "state_backend": config.state_backend, "voters": list(config.voters),
        "raft_members": list(config.raft_members), "coordinator_nodes": list(config.coordinator_nodes),
        "api": f"{config.api.bind_host}:{config.api.port}", "hosts": sorted(config.hosts),
        "data_dir": str(config.data_dir),
        "discovery": {"backends": list(config.discovery.backends),
                      "file_path": str(targets_path(config) or "") or None},
    }, indent=2))
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    url = args.url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            status = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"ringrift-cluster: cannot read {url}: {getattr(e, 'reason', e)}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return EXIT_OK
    print(format_status(status))
    return EXIT_OK


def format_status(status: dict[str, Any]) -> str:
    """One node's view as a small table."""
    quorum = status.get("quorum", {})
    lines = [
        f"node {status.get('node_id')}  role {status.get('role')}  leader {status.get('leader_id') or '-'}"
        f"  term {status.get('leader_term')}  quorum {quorum.get('alive_voters')}/{quorum.get('total_voters')}"
        f" ({quorum.get('health')})",
        f"modes: membership {status.get('swim_raft', {}).get('membership_mode')}, "
        f"consensus {status.get('swim_raft', {}).get('consensus_mode')}",
        "",
        f"{'PEER':<24}{'STATE':<10}{'SILENT_S':>10}  {'ROLE':<10}ADDRESS",
    ]
    for node_id, peer in sorted(status.get("peers", {}).items()):
        silent = peer.get("seconds_since_heartbeat")
        silent_text = f"{silent:.1f}" if isinstance(silent, (int, float)) else "-"
        lines.append(f"{node_id:<24}{peer.get('state', '?'):<10}{silent_text:>10}  {peer.get('role') or '-':<10}"
                     f"{peer.get('host')}:{peer.get('port')}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
