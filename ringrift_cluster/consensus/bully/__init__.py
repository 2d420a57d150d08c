"""The legacy election (Bully among voters, held by majority voter leases): ``BullyElection``,
its pure rules (``rules.py``) and what a voter remembers across restarts (``election_file.py``)."""

from .election import BullyElection

__all__ = ["BullyElection"]
