"""Consensus backends: who leads, and how shared state is made durable."""
