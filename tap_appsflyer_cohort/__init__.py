"""tap-appsflyer-cohort: a Singer tap for the AppsFlyer Cohort reporting API."""
