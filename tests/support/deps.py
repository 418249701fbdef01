"""Optional dependencies of the suite (Chromium, Redis, PostgreSQL).

A test that lacks one skips with a printed reason on a laptop; CI lists the names in
CHATSITE_REQUIRE (comma-separated) and then a missing one fails the test instead.
"""

import os

import pytest


def required(name: str) -> bool:
    """True when CHATSITE_REQUIRE names this dependency (or says "all")."""
    names = {n.strip() for n in os.environ.get("CHATSITE_REQUIRE", "").split(",")}
    return name in names or "all" in names


def need(name: str, available: bool, reason: str) -> None:
    """Skip (or, when required, fail) the calling test if `name` is not available."""
    if available:
        return
    message = f"{name} unavailable: {reason}"
    if required(name):
        pytest.fail(f"{message} (required by CHATSITE_REQUIRE)")
    pytest.skip(message)
