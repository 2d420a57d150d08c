"""An independent linearizability check of a state workload's history.

Unlike the rule checks in :mod:`..checks`, this one knows no rule about what went wrong: it
searches for one order of the recorded operations, each placed between its invoke and its
return, in which a sequential model of the operation answers what the cluster answered (the
Wing-Gong-Lowe search with the history split per key, as porcupine does). An operation whose
outcome is unknown returns at infinity and may or may not take effect.

- :mod:`.history` turns :class:`~..checks.calls.Call` s into operations per key and writes them
  as porcupine's ``Operation`` JSON;
- :mod:`.models` holds the sequential models (work item, lock, model registry);
- :mod:`.search` is the search; :mod:`.report` the HTML timeline of a failing key.
"""

from .check import Verdict, check_calls

__all__ = ["Verdict", "check_calls"]
