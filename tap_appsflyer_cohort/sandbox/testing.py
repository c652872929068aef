"""In-process helpers for tests: start a sandbox on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tap_appsflyer_cohort.sandbox.options import RequestRecord, SandboxOptions
from tap_appsflyer_cohort.sandbox.server import SandboxServer

__all__ = ["RequestRecord", "SandboxOptions", "SandboxServer", "running_sandbox"]


@contextmanager
def running_sandbox(**options: Any) -> Iterator[SandboxServer]:
    """Run a sandbox built from ``SandboxOptions(**options)`` for the ``with`` block."""
    server = SandboxServer(SandboxOptions(**options)).start()
    try:
        yield server
    finally:
        server.stop()
