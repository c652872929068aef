"""Run the target: ``python -m target_appsflyer_audiences``."""

from target_appsflyer_audiences.target import TargetAppsFlyerAudiences

TargetAppsFlyerAudiences.cli()
