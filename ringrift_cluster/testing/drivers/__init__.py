"""Node-side driver programs, each runnable with ``python -m``: ``raft`` runs one RaftConsensus
behind a small control API; ``swim`` runs one SwimMembership (or a pack of them) talking JSON lines."""
