"""``python -m coffee_dashboard``: the dashboard under uvicorn, configured only by ``DASHBOARD_*`` variables."""

from __future__ import annotations

import sys

from coffee_dashboard.app import DashboardService, MissingAssets
from coffee_dashboard.auth import AuthConfigError
from coffee_dashboard.settings import DashboardSettings
from coffee_service.serve import Listener, serve
from coffee_settings.env import SettingsError


def main() -> int:
    try:
        settings = DashboardSettings.from_env()
        service = DashboardService(settings)
    except (SettingsError, MissingAssets, AuthConfigError) as exc:
        print(f"coffee_dashboard: {exc}", file=sys.stderr)
        return 2
    # Open event streams end at the graceful-shutdown deadline; browsers reconnect to the next pod.
    serve(Listener(settings.host, settings.port, service.asgi(), settings.limits()),
          Listener(settings.internal_host, settings.internal_port, service.internal_asgi()),
          log_level=settings.log_level, access_log=settings.access_log, graceful_shutdown_s=2,
          on_event=lambda kind: service.metrics.connections_cut.labels(kind).inc())
    return 0


if __name__ == "__main__":
    sys.exit(main())
