"""The usage REST API, one module per resource; shared pieces in common.py and in
telemetry_site.api. Routes are listed in telemetry_site.api.urls."""
