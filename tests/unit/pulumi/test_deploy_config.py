"""``coffee-rt deploy``'s stack config: the repository's stack file, local images, kubeconfig, secrets."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

from coffee_rt import deploy
from coffee_rt.cli import build_parser

STACK_FILE = """
config:
  coffee-rt:profile: dev
  coffee-rt:images:
    ingest: coffee-rt/order-ingest:0.1.0
  coffee-rt:kafka:
    brokers: 1
    storage: {size: 5Gi}
  coffee-rt:redisPassword:
    secure: AAABAKnown
"""
CREDS = deploy.Credentials("p" * 48, "r" * 48, {"store-02": "tok2", "store-01": "tok1"}, "dash", "k" * 64)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_secret_config_is_what_infra_config_requires() -> None:
    assert CREDS.secret_config() == {
        "coffee-rt:postgresPassword": "p" * 48,
        "coffee-rt:redisPassword": "r" * 48,
        "coffee-rt:ingestTokens": json.dumps({"tokens": [
            {"store_id": "store-01", "sha256": _sha("tok1"), "label": "coffee-rt deploy"},
            {"store_id": "store-02", "sha256": _sha("tok2"), "label": "coffee-rt deploy"}]}, separators=(",", ":")),
        "coffee-rt:dashboardTokensSha256": _sha("dash"),
        "coffee-rt:credentialsKey": "k" * 64,
    }


def test_credentials_of_an_older_file_get_a_stable_key_derived_from_the_owner_password(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"postgres_password": "p" * 48, "redis_password": "r" * 48,
                                "ingest_tokens": {"store-01": "tok1"}, "dashboard_token": "dash"}))
    creds = deploy.load_credentials(path)
    key = _sha("coffee-rt roles/" + "p" * 48)
    assert creds.secret_config()["coffee-rt:credentialsKey"] == key
    assert deploy.load_credentials(path).secret_config()["coffee-rt:credentialsKey"] == key


def test_stack_config_overrides_images_and_adds_kubeconfig_and_secrets() -> None:
    images = {"ingest": "localhost/coffee-rt/order-ingest:dev", "flink": "localhost/coffee-rt/flink:dev"}
    config = deploy.stack_config(STACK_FILE, images, Path("/s/cluster/kubeconfig"), CREDS)
    assert config == {
        "coffee-rt:profile": ("dev", False),
        # No stand-in exists for the Kafka exporter: the stack leaves it out.
        "coffee-rt:images": ('{"ingest":"localhost/coffee-rt/order-ingest:dev",'
                             '"flink":"localhost/coffee-rt/flink:dev","kafkaExporter":null}', False),
        "coffee-rt:kafka": ('{"brokers":1,"storage":{"size":"5Gi"}}', False),
        "kubernetes:kubeconfig": ("/s/cluster/kubeconfig", False),
        **{key: (value, True) for key, value in CREDS.secret_config().items()},
    }


def test_credentials_are_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "pulumi" / "credentials.json"
    first = deploy.load_credentials(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert deploy.load_credentials(path) == first
    assert sorted(first.ingest_tokens) == ["store-01", "store-02"]
    assert len(first.postgres_password) == 48 and first.postgres_password != first.redis_password
    assert len(first.credentials_key) == 64 and first.credentials_key not in (first.postgres_password,
                                                                              first.redis_password)


def test_describe_names_the_changes_and_the_time() -> None:
    result = {"action": "up", "changes": {"same": 3, "create": 2}, "outputs": {}, "seconds": 61.4}
    assert deploy.describe(result) == "pulumi up: 2 create, 3 same in 61 s"
    assert deploy.describe({"action": "destroy", "changes": {}, "seconds": 4.0}) == "pulumi destroy: nothing in 4 s"


def test_deploy_command_parses_its_options() -> None:
    args = build_parser().parse_args(["deploy", "--destroy", "--stack", "prod"])
    assert (args.command, args.destroy, args.preview, args.stack) == ("deploy", True, False, "prod")
    args = build_parser().parse_args(["deploy"])
    assert (args.destroy, args.preview, args.stack) == (False, False, "dev")
