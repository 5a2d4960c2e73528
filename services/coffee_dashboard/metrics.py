"""The dashboard's own Prometheus metrics, served on the internal port only (a registry per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from coffee_service.serve import EVENTS


class DashboardMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.connections_cut = Counter(
            "coffee_dashboard_connections_cut", "Clients cut off by the public port's limits, by reason "
            "(header_timeout, body_timeout, header_too_large, evicted, refused, busy).", ["reason"], registry=r)
        for event in EVENTS:
            self.connections_cut.labels(event)
        self.token_reloads = Counter("coffee_dashboard_token_reloads", "Reads of a changed token file, by outcome "
                                     "(loaded; failed: the last good tokens stay in use).", ["outcome"], registry=r)
        for outcome in ("loaded", "failed"):
            self.token_reloads.labels(outcome)
        self.token_file_ok = Gauge("coffee_dashboard_token_file_ok",
                                   "1 while the token file as it is now is the one in use, 0 after a failed reload.",
                                   registry=r)
        self.token_file_ok.set(1)  # no token file (tokens in the environment): nothing to reload
        self.logins = Counter("coffee_dashboard_logins", "Links opened with a token, by outcome (session: a session "
                              "cookie was set; refused: the token is not valid).", ["outcome"], registry=r)
        for outcome in ("session", "refused"):
            self.logins.labels(outcome)
