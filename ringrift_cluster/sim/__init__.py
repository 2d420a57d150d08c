"""A discrete-event simulator of our SWIM backend (swim-p2p plus the engine's hooks), for sizes
this machine cannot run: ``python -m ringrift_cluster.sim --help``.

* ``params``: the protocol settings (from the config presets) and the model's own constants.
* ``sizes``: message sizes, built with the library's serializer and our gossip code.
* ``engine``: the event loop and the protocol as it runs.
* ``scenario``: one run (N, preset, loss, stalls, kills) -> figures.
* ``formulas``: closed forms (SWIM paper, memberlist, Serf, seed 004) to hold results against.
* ``calibrate``, ``report``: real runs vs simulated, the projection, ``docs/scale.md``.
"""
