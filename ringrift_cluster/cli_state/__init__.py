"""The state verbs of ``ringrift-cluster``, over a node's HTTP API (in the habits of etcdctl and
consul): ``members``, ``leader``, ``work``, ``jobs``, ``models`` and ``lock``.

Every verb takes ``--url`` (default ``$RINGRIFT_URL``, else ``http://127.0.0.1:8770``), the token
(``--token``, ``--token-file``, ``$RINGRIFT_CLUSTER_AUTH_TOKEN``, ``$RINGRIFT_CLUSTER_AUTH_TOKEN_FILE``)
and ``--json``; writes take ``--request-id`` (a retry with the same id is applied at most once).
Errors are one line on stderr; the exit code says what kind (see ``EXIT_*``).

``client.py`` talks to the node, ``parser.py`` reads the arguments, ``verbs.py`` runs each verb.
"""

from .client import (
    DEFAULT_URL, EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_UNAUTHORIZED, EXIT_UNAVAILABLE, EXIT_USAGE, CliError,
    Client, resolve_token,
)
from .parser import add_state_commands, run_state_command
from .verbs import JOB_STATUSES, MODEL_STAGES, WORK_STATUSES, table

__all__ = [
    "DEFAULT_URL", "EXIT_FAILURE", "EXIT_OK", "EXIT_REFUSED", "EXIT_UNAUTHORIZED", "EXIT_UNAVAILABLE", "EXIT_USAGE",
    "JOB_STATUSES", "MODEL_STAGES", "WORK_STATUSES", "CliError", "Client", "add_state_commands", "resolve_token",
    "run_state_command", "table",
]
