"""Pure checkers of what a fault run recorded: no cluster, no I/O beyond reading node logs.

- :mod:`.rounds`: the recorded ``/status`` rounds (``View``, ``Round``) and death ``Exemption`` s;
- :mod:`.leadership`: one leader per term, no two unexpired leases, unavailability windows;
- :mod:`.deaths`: healthy nodes declared failed;
- :mod:`.calls`: a state workload's history (``Call``, ``Attempt``, ``FinalState``, outcomes);
- :mod:`.state` (with :mod:`.work` and :mod:`.locks`): ``check_history`` over it.
"""
