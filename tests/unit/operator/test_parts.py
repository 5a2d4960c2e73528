"""The operator's pure parts besides decide(): ids, spec, settings, children, job config, status patches."""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_builders import BASE, fp, spec, target

from coffee_flink import lifecycle as jobids
from coffee_jobconfig.args import program_args
from coffee_operator import children, metrics
from coffee_operator.act import ActError, job_config, merge_diff, postgres_parts
from coffee_operator.settings import OperatorSettings, SettingsError
from coffee_operator.spec import Entry, Sinks, SpecError, duration_seconds, flink_duration, parse_spec
from coffee_operator.status import (
    KEEP,
    Nonces,
    PipelineStatus,
    Savepoint,
    StableSpec,
    StatusChange,
    Stopped,
    merge,
)

SECRETS = {("pg", "dsn"): "postgresql://coffee:p%40ss@db.example:5432/coffee?sslmode=require",
           ("rd", "url"): "redis://redis:6379/0"}


# ---- job ids -------------------------------------------------------------------------------------

def test_job_ids_are_deterministic_and_distinct() -> None:
    a1, a2 = jobids.job_id("uid-a", 1), jobids.job_id("uid-a", 2)
    assert a1 == jobids.job_id("uid-a", 1)
    assert len({a1, a2, jobids.job_id("uid-b", 1)}) == 3
    assert len(a1) == 32 and int(a1, 16) >= 0
    assert jobids.known_ids("uid-a", 1) == {a1: 1, a2: 2}


@pytest.mark.parametrize(("uid", "n", "message"), [("u", 0, "start at 1"), ("", 1, "owner id is required")])
def test_job_ids_refuse_bad_input(uid: str, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jobids.job_id(uid, n)


# ---- spec --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds", "flink"), [
    ("500ms", 0.5, "500ms"), ("10s", 10, "10s"), ("5m", 300, "5min"), ("5min", 300, "5min"), ("36h", 129600, "36h"),
    ("7d", 604800, "168h"),
])
def test_durations(text: str, seconds: float, flink: str) -> None:
    assert (duration_seconds(text), flink_duration(text)) == (seconds, flink)


@pytest.mark.parametrize("text", ["10", "0s", "10 s", "1w", ""])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        duration_seconds(text)


def test_fingerprint_is_the_job_not_its_lifecycle() -> None:
    assert fp() == {
        "restUrl": "http://flink:8081", "entry": {"module": "coffee_job.main"}, "parallelism": 1,
        "checkpointInterval": "10s", "kafka": {"bootstrap": "kafka:9092", "topics": {"orders": "orders",
                                                                                     "dlq": "orders.dlq"}},
        "sinks": {"postgres": {"secretRef": {"name": "pg", "key": "dsn"}},
                  "redis": {"secretRef": {"name": "rd", "key": "url"}}},
    }
    assert fp(state="suspended", upgradeMode="stateless", restartNonce=4, savepointTriggerNonce=2) == fp()
    assert fp(parallelism=2) != fp()


def test_a_malformed_spec_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"spec.job.parallelism: Input should be a valid integer"):
        parse_spec({**BASE, "job": {**BASE["job"], "parallelism": "two"}})


# ---- settings --------------------------------------------------------------------------------------

def test_settings_from_env() -> None:
    s = OperatorSettings.from_env({"COFFEE_OPERATOR_RECONCILE_INTERVAL": "2.5",
                                   "COFFEE_OPERATOR_JOB_CONFIG_OVERRIDES": '{"state_backend": "rocksdb"}',
                                   "PATH": "/bin"})
    assert (s.reconcile_interval, s.job_config_overrides, s.secrets_dir) == (
        2.5, {"state_backend": "rocksdb"}, "/etc/coffee-rt/secrets")


@pytest.mark.parametrize(("env", "message"), [
    ({"COFFEE_OPERATOR_RECONCILE_INTERVL": "1"}, "unknown setting COFFEE_OPERATOR_RECONCILE_INTERVL"),
    ({"COFFEE_OPERATOR_RECONCILE_INTERVAL": "0"},
     "COFFEE_OPERATOR_RECONCILE_INTERVAL: Input should be greater than 0"),
    ({"COFFEE_OPERATOR_JOB_CONFIG_OVERRIDES": "{nope"}, "COFFEE_OPERATOR_JOB_CONFIG_OVERRIDES is not JSON"),
    ({"COFFEE_OPERATOR_METRICS_PORT": "70000"},
     "COFFEE_OPERATOR_METRICS_PORT: Input should be less than or equal to 65535"),
    ({"COFFEE_OPERATOR_SECRETS_DIR": "secrets"}, "COFFEE_OPERATOR_SECRETS_DIR: String should match pattern '\\^/'"),
    # the secrets travel as mounted files only: the program-arguments way is gone, not ignored
    ({"COFFEE_OPERATOR_SECRETS_IN_PROGRAM_ARGS": "true"}, "unknown setting COFFEE_OPERATOR_SECRETS_IN_PROGRAM_ARGS"),
])
def test_bad_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        OperatorSettings.from_env(env)


# ---- the job's config and arguments ------------------------------------------------------------------

def test_job_config_from_the_spec_and_its_secrets() -> None:
    cfg = job_config("coffee-rt", "roastery", target(checkpointInterval="1m"), lambda n, k: SECRETS[(n, k)],
                     OperatorSettings(job_config_overrides={"state_backend": "rocksdb"}))
    assert (cfg.job_name, cfg.group_id) == ("coffee-rt-coffee-rt-roastery", "coffee-rt-coffee-rt-roastery")
    assert (cfg.postgres_jdbc_url, cfg.postgres_user, cfg.postgres_password_file) == (
        "jdbc:postgresql://db.example:5432/coffee?sslmode=require", "coffee", "/etc/coffee-rt/secrets/pg/password")
    assert (cfg.redis_url_file, cfg.checkpoint_interval, cfg.state_backend) == (
        "/etc/coffee-rt/secrets/rd/url", "1min", "rocksdb")
    assert (cfg.kafka_bootstrap, cfg.orders_topic, cfg.dlq_topic) == ("kafka:9092", "orders", "orders.dlq")


def test_job_config_without_sinks_is_refused() -> None:
    with pytest.raises(ActError, match=r"spec\.sinks\.postgres\.secretRef and spec\.sinks\.redis\.secretRef"):
        job_config("ns", "p", target().model_copy(update={"sinks": Sinks()}), lambda n, k: "", OperatorSettings())


@pytest.mark.parametrize("dsn", ["mysql://a:b@h/db", "postgresql:///db", "not a dsn"])
def test_a_postgres_secret_that_is_not_a_dsn_is_refused(dsn: str) -> None:
    with pytest.raises(ActError, match="must hold a DSN like postgresql://"):
        postgres_parts(dsn)


def test_bad_job_config_overrides_are_refused() -> None:
    with pytest.raises(ActError, match="invalid job config"):
        job_config("ns", "p", target(), lambda n, k: SECRETS[(n, k)], OperatorSettings(job_config_overrides={"x": 1}))


def test_program_args_name_the_mounted_files_and_hold_no_secret() -> None:
    cfg = job_config("ns", "p", target(), lambda n, k: SECRETS[(n, k)], OperatorSettings(secrets_dir="/mnt/s/"))
    args = program_args(cfg, entry=Entry(module="coffee_job.main").driver_args())
    assert args[:3] == ["-pym", "coffee_job.main", "--config-json"]
    values = json.loads(args[3])
    assert (values["postgres_password_file"], values["redis_url_file"]) == ("/mnt/s/pg/password", "/mnt/s/rd/url")
    assert "p@ss" not in args[3] and "p%40ss" not in args[3] and "redis://" not in args[3]
    file_args = program_args(cfg, entry=Entry(file="/opt/job.py").driver_args())
    assert file_args[:2] == ["-py", "/opt/job.py"]


@pytest.mark.parametrize(("name", "key", "message"), [
    ("rd", "..", "secret key '..' cannot name a mounted file"),
    ("rd", "a/b", "secret key 'a/b' cannot name a mounted file"),
])
def test_a_secret_ref_that_cannot_be_a_mounted_file_is_refused(name: str, key: str, message: str) -> None:
    spec = target()
    redis = spec.sinks.redis
    assert redis is not None
    sinks = spec.sinks.model_copy(update={"redis": redis.model_copy(update={
        "secret_ref": redis.secret_ref.model_copy(update={"name": name, "key": key})})})
    with pytest.raises(ActError) as caught:
        job_config("ns", "p", spec.model_copy(update={"sinks": sinks}), lambda n, k: SECRETS[("pg", "dsn")],
                   OperatorSettings())
    assert str(caught.value) == message


# ---- status patches -----------------------------------------------------------------------------------

def test_merge_diff_round_trips_through_a_merge_patch() -> None:
    old: dict[str, Any] = {"phase": "Running", "deployed": {"spec": {"sinks": {"redis": {"x": 1}}, "p": 1}},
                           "pending": {"a": 1}, "history": [1, 2]}
    new: dict[str, Any] = {"phase": "Upgrading", "deployed": {"spec": {"p": 2}}, "history": [2]}
    patch = merge_diff(old, new)
    assert patch == {"pending": None, "phase": "Upgrading", "deployed": {"spec": {"sinks": None, "p": 2}},
                     "history": [2]}
    assert merge(old, patch) == new
    assert merge_diff(new, new) == {}


def test_a_status_change_names_every_status_field_but_the_revision() -> None:
    assert set(StatusChange().fields()) == set()
    everything = StatusChange(**{name: None for name in PipelineStatus.model_fields if name != "revision"})
    assert set(everything.fields()) == set(PipelineStatus.model_fields) - {"revision"}


def test_a_status_change_becomes_camel_case_json_only_when_dumped() -> None:
    savepoint = Savepoint(path="file:/sp/1", time="2026-03-14T12:00:00Z", trigger="manual")
    change = StatusChange(last_stable_spec=StableSpec(generation=2, spec=target(parallelism=2)), pending=None,
                          recoveries=0, nonces=Nonces(savepoint=4), savepoint_history=(savepoint,),
                          stopped=Stopped(reason="suspend", at="2026-03-14T12:00:00Z"), phase="Suspended")
    assert change.dump() == {
        "phase": "Suspended",
        "recoveries": None,  # back at its default: removed
        "lastStableSpec": {"generation": 2, "spec": fp(parallelism=2)},
        "pending": None,
        "stopped": {"reason": "suspend", "restoreKind": "none", "at": "2026-03-14T12:00:00Z"},
        "nonces": {"savepoint": 4},
        "savepointHistory": [{"path": "file:/sp/1", "time": "2026-03-14T12:00:00Z", "trigger": "manual"}],
    }
    before = PipelineStatus.parse({"phase": "Running", "recoveries": 3, "submissions": 2,
                                   "pending": {"submission": 3, "generation": 2, "spec": fp(), "reason": "upgrade",
                                               "since": "2026-03-14T11:00:00Z"}})
    after = change.apply(before)
    assert after == PipelineStatus.parse(merge(before.dump(), change.dump()))
    assert (after.phase, after.recoveries, after.submissions, after.pending, after.savepoint_history) == (
        "Suspended", 0, 2, None, [savepoint])
    assert StatusChange(phase=KEEP).dump() == {}


# ---- children --------------------------------------------------------------------------------------

def test_children_are_the_ingest_workload() -> None:
    raw = {**BASE, "ingest": {**BASE["ingest"], "authSecretRef": {"name": "coffee-rt-ingest-auth", "key": "tokens"},
                              "resources": {"limits": {"cpu": "1"}}}}
    objects = children.render("roastery", parse_spec(raw), {})
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ConfigMap", "roastery-ingest"), ("Deployment", "roastery-ingest"), ("Service", "roastery-ingest"),
        ("PodDisruptionBudget", "roastery-ingest")]
    config, deployment, service, pdb = objects
    assert config["data"] == {"INGEST_HOST": "0.0.0.0", "INGEST_PORT": "8080", "INGEST_INTERNAL_HOST": "0.0.0.0",
                              "INGEST_INTERNAL_PORT": "9080", "INGEST_KAFKA_BOOTSTRAP": "kafka:9092",
                              "INGEST_TOPIC": "orders", "INGEST_TOKENS_FILE": "/etc/coffee-ingest/tokens.json"}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "coffee-rt/order-ingest:0.1.0"
    assert container["resources"] == {"limits": {"cpu": "1"}}
    assert pod["volumes"] == [{"name": "tokens", "secret": {"secretName": "coffee-rt-ingest-auth",
                                                            "items": [{"key": "tokens", "path": "tokens.json"}]}}]
    assert container["securityContext"]["runAsNonRoot"] is True
    selector = {"app.kubernetes.io/name": "coffee-ingest", "app.kubernetes.io/instance": "roastery"}
    assert deployment["spec"]["selector"]["matchLabels"] == selector == service["spec"]["selector"]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert container["ports"] == [{"name": "http", "containerPort": 8080}, {"name": "internal", "containerPort": 9080}]


def test_without_an_auth_secret_nothing_is_mounted() -> None:
    deployment = children.deployment("p", spec())
    assert "volumes" not in deployment["spec"]["template"]["spec"]
    assert "INGEST_TOKENS_FILE" not in children.config_map("p", spec())["data"]


def test_a_token_secret_checksum_rolls_the_pods() -> None:
    def annotations(checksum: str | None) -> dict[str, str]:
        ingest = {**BASE["ingest"], "authSecretRef": {"name": "coffee-rt-ingest-auth", "key": "tokens"}}
        if checksum is not None:
            ingest["authSecretChecksum"] = checksum
        deployment = children.deployment("p", parse_spec({**BASE, "ingest": ingest}))
        return dict(deployment["spec"]["template"]["metadata"]["annotations"])

    assert set(annotations(None)) == {"coffee-rt.dev/config-hash"}
    first, second = annotations("0123456789abcdef"), annotations("fedcba9876543210")
    assert first["coffee-rt.dev/auth-secret-checksum"] == "0123456789abcdef"
    assert second["coffee-rt.dev/auth-secret-checksum"] == "fedcba9876543210"
    assert first["coffee-rt.dev/config-hash"] == second["coffee-rt.dev/config-hash"]


def test_a_config_change_rolls_the_pods() -> None:
    raw = {**BASE, "kafka": {**BASE["kafka"], "bootstrap": "kafka-2:9092"}}
    hash_of = [children.deployment("p", s)["spec"]["template"]["metadata"]["annotations"]["coffee-rt.dev/config-hash"]
               for s in (spec(), parse_spec(raw))]
    assert hash_of[0] != hash_of[1]


# ---- metrics -----------------------------------------------------------------------------------------

def test_metrics_follow_the_status() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    restarts = metrics.JOB_RESTARTS.labels("m-ns", "m")
    metrics.update("m-ns", "m", "job-a", "RUNNING", 2, now - timedelta(seconds=12), now - timedelta(hours=1), now)
    metrics.update("m-ns", "m", "job-a", "RESTARTING", 3, now - timedelta(seconds=12), None, now)
    assert metrics.JOB_STATE.labels("m-ns", "m", "RESTARTING")._value.get() == 1
    assert metrics.JOB_STATE.labels("m-ns", "m", "RUNNING")._value.get() == 0
    assert metrics.LAST_CHECKPOINT_AGE.labels("m-ns", "m")._value.get() == 12
    assert metrics.LAST_SAVEPOINT_AGE.labels("m-ns", "m")._value.get() == 3600
    assert restarts._value.get() == 3
    metrics.update("m-ns", "m", "job-b", "RUNNING", 1, None, None, now)  # a new job counts from zero
    assert restarts._value.get() == 4
