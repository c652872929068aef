"""target-appsflyer-audiences: a Singer target that keeps AppsFlyer Audiences in step with tables.

It ships in the tap-appsflyer-cohort distribution but imports nothing from the tap, so it
can become a distribution of its own.
"""
