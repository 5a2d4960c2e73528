"""One credential per role in the rendered manifests: the key that derives them, each workload's
own Secret, and no credential in any environment value or argument."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import DEV_SECRETS, PROD_SECRETS, run_stack

from coffee_db import roles
from coffee_rt.local.components import redis as local_redis
from infra import config, credentials, mockrun

KEY = mockrun.PLACEHOLDER_SECRETS["credentialsKey"]


def test_a_missing_credentials_key_names_the_key_and_the_command() -> None:
    with pytest.raises(config.ConfigError) as raised:
        run_stack("dev", [s for s in DEV_SECRETS if s != "credentialsKey"])
    assert str(raised.value) == ("invalid stack config:\n  coffee-rt:credentialsKey: missing: set it with "
                                 "`pulumi config set --secret coffee-rt:credentialsKey <value>`")


def test_a_short_credentials_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(config.ConfigError) as raised:
        run_stack("dev", DEV_SECRETS, {"coffee-rt:credentialsKey": "too-short-key"})
    assert str(raised.value) == (
        "invalid stack config:\n  coffee-rt:credentialsKey: must be 32 to 256 characters of A-Z a-z 0-9 . _ ~ + / "
        "= - (e.g. openssl rand -hex 32): every role's password is derived from it")


def test_passwords_are_distinct_per_role_and_stable() -> None:
    passwords = [credentials.postgres_password(KEY, r) for r in roles.ALL_ROLES] + [
        credentials.redis_password(KEY, u) for u in credentials.REDIS_USERS]
    assert len(set(passwords)) == 8 and all(len(p) == 64 for p in passwords)
    assert credentials.postgres_password(KEY, roles.JOB) == credentials.postgres_password(KEY, roles.JOB)
    with pytest.raises(ValueError, match="'coffee' is not one of the database's roles"):
        credentials.postgres_password(KEY, "coffee")


def test_the_dashboard_acl_is_the_local_stacks() -> None:
    assert credentials.DASHBOARD_ACL == local_redis.DASHBOARD_ACL


def _workloads(run: mockrun.Run) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"].rsplit("-", 1)[0] if m["kind"] == "Job" else m["metadata"]["name"]: m
            for m in run.manifests() if m["kind"] in ("Deployment", "StatefulSet", "Job")}


def _secrets_of(pod: dict[str, Any]) -> set[str]:
    """Every Secret a Pod reads: volumes (plain and projected) and secretKeyRef variables."""
    out: set[str] = set()
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            out.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                out.add(source["secret"]["name"])
    for c in pod["containers"] + pod.get("initContainers", []):
        for var in c.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                out.add(ref["name"])
    return out


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_workload_reads_only_its_own_secrets(stack: str) -> None:
    run = run_stack(stack, DEV_SECRETS if stack == "dev" else PROD_SECRETS)
    read = {name: _secrets_of(w["spec"]["template"]["spec"]) for name, w in _workloads(run).items()}
    s3 = {"coffee-rt-flink-s3"} if stack == "prod" else set()
    assert {name: secrets for name, secrets in read.items() if secrets} == {
        "postgres": {"coffee-rt-postgres"},
        "postgres-migrate": {"coffee-rt-postgres", "coffee-rt-postgres-roles"},
        "redis": {"coffee-rt-redis-server", "coffee-rt-redis"},
        "flink-jobmanager": {"coffee-rt-postgres-job", "coffee-rt-redis-job", *s3},
        "flink-taskmanager": {"coffee-rt-postgres-job", "coffee-rt-redis-job", *s3},
        "coffee-dashboard": {"coffee-rt-postgres-dashboard", "coffee-rt-redis-dashboard", "coffee-rt-dashboard-auth"},
        "postgres-exporter": {"coffee-rt-postgres-monitor"},
        "redis-exporter": {"coffee-rt-redis-monitor"},
    }
    spec = run.object("CoffeePipeline", "roastery")["spec"]
    assert (spec["sinks"], {k: spec["audit"][k] for k in ("postgresSecretRef", "redisSecretRef")}) == (
        {"postgres": {"secretRef": {"name": "coffee-rt-postgres-job", "key": "dsn"}},
         "redis": {"secretRef": {"name": "coffee-rt-redis-job", "key": "url"}}},
        {"postgresSecretRef": {"name": "coffee-rt-postgres-auditor", "key": "dsn"},
         "redisSecretRef": {"name": "coffee-rt-redis-auditor", "key": "url"}})


def test_no_credential_in_any_value_or_argument(dev: mockrun.Run) -> None:
    """Every password, verifier and URL of every role is only in its Secret's stringData."""
    values = [*mockrun.PLACEHOLDER_SECRETS.values()]
    values += [credentials.postgres_password(KEY, r) for r in roles.ALL_ROLES]
    values += [credentials.postgres_verifier(KEY, r).split("$", 1)[1] for r in roles.ALL_ROLES]
    values += [credentials.redis_password(KEY, u) for u in credentials.REDIS_USERS]
    others = json.dumps([m for m in dev.manifests() if m["kind"] != "Secret"])
    assert [v for v in values if v in others] == []


def test_the_redis_users_file_holds_digests_only() -> None:
    conf = credentials.redis_acl_conf("admin-password-of-16", KEY)
    assert "admin-password-of-16" not in conf
    assert all(credentials.redis_password(KEY, u) not in conf for u in credentials.REDIS_USERS)
    assert [line.split(" ", 3)[1] for line in conf.splitlines()] == [
        "default", "coffee-job", "coffee-auditor", "coffee-dashboard", "coffee-monitor"]
