"""Fuzz tests: bad input thrown at a real node (HTTP API, engine ports) and at the config loader.

Hypothesis runs derandomized (a fixed seed derived from each test) and without an example
database, so every CI run tries the same inputs and a failure reproduces with the same command.
Tests use ``@settings(parent=settings.get_profile("fuzz"), max_examples=...)``; the profile is
registered here, never loaded globally, so other suites keep their own hypothesis settings.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
