"""Membership backends: who is alive. One interface, several engines."""
