"""What every demo needs before a node starts: its options, its token and its signal handlers."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ..config import ConsensusMode, MembershipMode
from ..errors import ConfigError
from .view import Out, WriteInterrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop:
    """Set by SIGINT, SIGTERM or SIGHUP (a closed terminal); the demo then stops every node."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        if Out.writing:  # blocked on a paused terminal, perhaps: give up that write
            raise WriteInterrupted

    def __call__(self) -> bool:
        return self.signal is not None

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when a stop signal arrives."""
        deadline = time.monotonic() + seconds
        while self.signal is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.05, left))


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # "--auth-token", "$RINGRIFT_CLUSTER_AUTH_TOKEN", a file path, or "generated"

    def curl_header(self) -> str:
        """How a pasted curl command should send it: the secret itself only when we made it up."""
        if self.source == "$RINGRIFT_CLUSTER_AUTH_TOKEN":
            return '"Authorization: Bearer $RINGRIFT_CLUSTER_AUTH_TOKEN"'
        if self.source.startswith("file "):
            return f'"Authorization: Bearer $(cat {self.source[5:]})"'
        return f'"Authorization: Bearer {self.value}"'

    def cli_environment(self, url: str) -> str:
        """What to export for ``ringrift-cluster`` verbs: the secret itself only when we made it up
        (or it was given on the command line, as the curl header does)."""
        if self.source == "$RINGRIFT_CLUSTER_AUTH_TOKEN":
            return f"RINGRIFT_URL={url}"  # already in the environment
        if self.source.startswith("file "):
            return f"RINGRIFT_URL={url} RINGRIFT_CLUSTER_AUTH_TOKEN_FILE={self.source[5:]}"
        return f"RINGRIFT_URL={url} RINGRIFT_CLUSTER_AUTH_TOKEN={self.value}"


def resolve_token(args: argparse.Namespace, env: os._Environ[str] | dict[str, str] = os.environ) -> Token:
    """--auth-token, else $RINGRIFT_CLUSTER_AUTH_TOKEN, else --auth-token-file or
    $RINGRIFT_CLUSTER_AUTH_TOKEN_FILE, else a generated token."""
    if args.auth_token:
        return Token(args.auth_token, "--auth-token")
    if env.get("RINGRIFT_CLUSTER_AUTH_TOKEN"):
        return Token(env["RINGRIFT_CLUSTER_AUTH_TOKEN"], "$RINGRIFT_CLUSTER_AUTH_TOKEN")
    path = args.auth_token_file or env.get("RINGRIFT_CLUSTER_AUTH_TOKEN_FILE")
    if path:
        label = "--auth-token-file" if args.auth_token_file else "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE"
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(label, path, "a readable file", e.strerror or str(e)) from e
        except UnicodeDecodeError as e:
            raise ConfigError(label, path, "a UTF-8 text file", str(e)) from e
        if not value:
            raise ConfigError(label, path, "a file holding a token", "it is empty")
        return Token(value, f"file {path}")
    return Token(secrets.token_hex(16), "generated")


def resolve_modes(args: argparse.Namespace, env: os._Environ[str] | dict[str, str] = os.environ) -> tuple[str, str]:
    """(membership, consensus): the flag, else the environment, else swim and raft."""
    membership = args.membership_mode or env.get("RINGRIFT_MEMBERSHIP_MODE") or MembershipMode.SWIM.value
    consensus = args.consensus_mode or env.get("RINGRIFT_CONSENSUS_MODE") or ConsensusMode.RAFT.value
    membership, consensus = membership.strip().lower(), consensus.strip().lower()
    if membership not in {m.value for m in MembershipMode}:
        raise ConfigError("--membership-mode", membership, f"one of {[m.value for m in MembershipMode]}")
    if consensus not in {m.value for m in ConsensusMode}:
        raise ConfigError("--consensus-mode", consensus, f"one of {[m.value for m in ConsensusMode]}")
    return membership, consensus


def demo_settings(args: argparse.Namespace, membership: str, consensus: str) -> dict[str, Any]:
    """The ``ringrift_cluster`` section every demo node reads; ``--sd-file`` is kept by all of them
    (each writes the whole membership view atomically, so whichever dies, the rest keep it current)."""
    settings: dict[str, Any] = {"membership_mode": membership, "consensus_mode": consensus}
    if args.sd_file:
        settings["discovery"] = {"file_path": os.path.join(os.getcwd(), args.sd_file)}
    return settings


def check_sizes(args: argparse.Namespace, clusters: int) -> None:
    if not 1 <= args.nodes <= 100:
        raise ConfigError("--nodes", args.nodes, "a number of nodes from 1 to 100")
    top = 65535 - 3 * args.nodes * clusters
    if not 1024 <= args.base_port <= top:
        raise ConfigError("--base-port", args.base_port, f"a port from 1024 to {top}")


def node_env(membership: str, consensus: str, token: Token) -> dict[str, str]:
    """The environment of a demo's nodes: its modes and token win over the caller's."""
    env = {k: v for k, v in os.environ.items() if k != "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE"}
    env.update(RINGRIFT_MEMBERSHIP_MODE=membership, RINGRIFT_CONSENSUS_MODE=consensus,
               RINGRIFT_CLUSTER_AUTH_TOKEN=token.value)
    return env


def token_lines(token: Token, url: str) -> list[str]:
    """The token (when generated) and a write to paste."""
    first = (f"auth token (generated): {token.value}" if token.source == "generated"
             else f"auth token: from {token.source}")
    return [first,
            "try a write:  curl -s -X POST " + url + "/raft/work -H " + token.curl_header() +
            " -H 'Content-Type: application/json' -d '{\"work_id\": \"W1\", \"work_type\": \"selfplay\"}'",
            f"or the CLI:   export {token.cli_environment(url)}; ringrift-cluster work add W1 --type selfplay",
            f"status page:  {url}/ui"]
