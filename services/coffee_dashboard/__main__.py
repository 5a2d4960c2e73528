"""``python -m coffee_dashboard``: the dashboard under uvicorn, configured only by ``DASHBOARD_*`` variables."""

from __future__ import annotations

import importlib.util
import logging
import sys

import uvicorn

from coffee_dashboard.app import DashboardService, MissingAssets
from coffee_dashboard.settings import DashboardSettings
from coffee_service.envsettings import SettingsError


def main() -> int:
    try:
        settings = DashboardSettings.from_env()
        service = DashboardService(settings)
    except (SettingsError, MissingAssets) as exc:
        print(f"coffee_dashboard: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    have = importlib.util.find_spec
    uvicorn.run(
        service.asgi(),
        host=settings.host,
        port=settings.port,
        loop="uvloop" if have("uvloop") else "asyncio",
        http="httptools" if have("httptools") else "h11",
        access_log=settings.access_log,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=2,  # open event streams end here; browsers reconnect to the next pod
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
