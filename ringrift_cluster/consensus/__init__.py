"""Consensus backends: who leads (Bully, Raft, a Raft observer). Where the state is durable is ``store/``."""
