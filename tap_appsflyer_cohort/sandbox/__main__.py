"""``python -m tap_appsflyer_cohort.sandbox``: the same as ``appsflyer-cohort-sandbox``."""

from tap_appsflyer_cohort.sandbox.cli import main

raise SystemExit(main())
