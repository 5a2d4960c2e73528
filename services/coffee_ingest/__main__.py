"""``python -m coffee_ingest``: the service under uvicorn, configured only by ``INGEST_*`` variables.

One process, one event loop: on a small node a second worker would only fight the broker and
the poll thread for cores.
"""

from __future__ import annotations

import gc
import sys

from coffee_ingest.app import IngestService
from coffee_ingest.auth import TokenFileError
from coffee_ingest.settings import IngestSettings
from coffee_service.serve import Listener, serve
from coffee_settings.env import SettingsError


def main() -> int:
    try:
        settings = IngestSettings.from_env()
        service = IngestService(settings)
    except (SettingsError, TokenFileError) as exc:
        print(f"coffee_ingest: {exc}", file=sys.stderr)
        return 2
    # Everything built so far lives for the whole process: keep the collector from rescanning it.
    gc.collect()
    gc.freeze()
    # With INGEST_ACK_WAKEUP=poll-thread (or where the io event can't be set up) deliveries come
    # back on a thread: with CPython's default 5 ms switch interval the event loop could hold the
    # GIL that long before the thread got it to settle a request.
    sys.setswitchinterval(0.0005)
    serve(Listener(settings.host, settings.port, service.asgi(), settings.limits()),
          Listener(settings.internal_host, settings.internal_port, service.internal_asgi()),
          log_level=settings.log_level, access_log=settings.access_log, graceful_shutdown_s=10,
          on_event=lambda kind: service.metrics.connections_cut.labels(kind).inc())
    return 0


if __name__ == "__main__":
    sys.exit(main())
