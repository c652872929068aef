"""A faithful local simulator of the AppsFlyer Cohort API, for tests and benchmarks.

Start one with ``running_sandbox(today=..., seed=...)`` or the console script
``appsflyer-cohort-sandbox``; see ``SandboxOptions`` for every knob.
"""

from tap_appsflyer_cohort.sandbox.options import RequestRecord, SandboxOptions
from tap_appsflyer_cohort.sandbox.server import SandboxServer
from tap_appsflyer_cohort.sandbox.testing import running_sandbox

__all__ = ["RequestRecord", "SandboxOptions", "SandboxServer", "running_sandbox"]
