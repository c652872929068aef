"""Shared fixtures: a sandbox API on a free loopback port, started and stopped per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox

SANDBOX_TODAY = date(2026, 6, 15)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A fresh sandbox whose clock reads SANDBOX_TODAY (tests may change it)."""
    with running_sandbox(today=SANDBOX_TODAY, seed=42) as server:
        yield server


@pytest.fixture
def live_sandbox() -> Iterator[SandboxServer]:
    """A sandbox on the real clock, for the tap run as a command (its clock cannot be set)."""
    with running_sandbox(seed=42) as server:
        yield server
