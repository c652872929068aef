"""Run the tap: ``python -m tap_appsflyer_cohort``."""

from tap_appsflyer_cohort.tap import TapAppsFlyerCohort

TapAppsFlyerCohort.cli()
