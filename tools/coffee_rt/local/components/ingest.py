"""The order-ingest service (``python -m coffee_ingest``) pointed at the stack's Kafka.

Dev tokens: on first prepare, one random token per load-generator store is written to
``<home>/dev-tokens.json`` (plain, mode 0600, for the demo, tests and benchmarks) and its
SHA-256 to ``<home>/tokens.json``, the file the service reads, in the same format as the
Kubernetes Secret. Later prepares keep them, so a running client's token stays valid. The
service re-reads ``tokens.json`` within seconds of a change (docs/ingest.md#authentication).
Its metrics and OpenAPI document are on the internal port (``internal_url``), not the order port.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx

from coffee_orders import topics
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.process import ManagedProcess


class Ingest(Component):
    name = "ingest"
    order_path_role = "service"
    start_timeout = 45.0

    def ports(self) -> list[int]:
        return [self.settings.ingest_port, self.settings.ingest_internal_port]

    def address(self) -> str:
        return self.settings.ingest_url

    @property
    def tokens_file(self) -> Path:
        """The token file the service reads (SHA-256 digests, the Kubernetes Secret's format)."""
        return self.home / "tokens.json"

    def prepare(self, progress: Progress) -> None:
        from coffee_ingest.auth import TokenFile, entry_for, new_token
        from coffee_orders.loadgen import DEFAULT_STORES

        self.home.mkdir(parents=True, exist_ok=True)
        dev = self.home / "dev-tokens.json"
        if not dev.exists():
            progress("ingest: writing dev tokens for the load generator's stores")
            plain = {store.store_id: new_token() for store in DEFAULT_STORES}
            fd = os.open(dev, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(plain, out, indent=2)
        plain = self.dev_tokens()
        hashed = TokenFile(tokens=[entry_for(store, token, "local dev") for store, token in plain.items()])
        self.tokens_file.write_text(hashed.model_dump_json(indent=2))

    def dev_tokens(self) -> dict[str, str]:
        """store_id -> plain bearer token of the local stack (only after prepare)."""
        data: dict[str, str] = json.loads((self.home / "dev-tokens.json").read_text())
        return data

    def processes(self) -> list[ManagedProcess]:
        env = {
            "INGEST_HOST": self.settings.host,
            "INGEST_PORT": str(self.settings.ingest_port),
            "INGEST_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "INGEST_TOPIC": topics.ORDERS.name,
            "INGEST_TOKENS_FILE": str(self.tokens_file),
            "INGEST_INTERNAL_HOST": self.settings.host,
            "INGEST_INTERNAL_PORT": str(self.settings.ingest_internal_port),
        }
        return [self.process("", [sys.executable, "-m", "coffee_ingest"], env=env)]

    def health(self) -> Health:
        try:
            response = httpx.get(f"{self.address()}/readyz", timeout=3)
        except httpx.HTTPError as exc:
            return Health(False, f"GET /readyz: {exc}")
        if response.status_code != 200:
            return Health(False, f"GET /readyz: {response.status_code} {response.text[:200]}")
        return Health(True, str(response.json().get("kafka", "ready")))
