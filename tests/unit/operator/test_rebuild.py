"""spec.rebuild without servers: decide's choices for every step (history Job; live stop, submit without
state, follow Job; the Job's end; rejections that change nothing), the Job as rendered, what act writes, and
the operator's day rules held equal to the ones the rebuild itself runs (coffee_auditor.rebuild)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from operator_builders import BASE, NOW, SETTINGS, ago, fp, job, running_status, seen, target

from coffee_auditor import rebuild as auditor_rebuild
from coffee_auditor.engine import Targets
from coffee_operator import children
from coffee_operator.act import Actor, Pipeline, job_config
from coffee_operator.decide import (
    CreateRebuildJob,
    Event,
    Observation,
    Record,
    StopWithSavepoint,
    Submit,
    decide,
    summarize,
)
from coffee_operator.observation import RebuildJobObservation
from coffee_operator.rebuild import job_name, live_day_problem, replay_start_ms
from coffee_operator.spec import PipelineSpec, parse_spec
from coffee_operator.status import Nonces, PipelineStatus, RebuildStatus, iso

AUDIT = {"image": "registry.example/coffee-rt/auditor:0.1.0", "enabled": True, "interval": "30s"}
TODAY = "2026-03-14"  # NOW's day in UTC (the settings' default zone)
REPLAY_MS = int(datetime(2026, 3, 13, 23, 55, tzinfo=UTC).timestamp() * 1000)  # 2026-03-14 minus 5 minutes


def spec(rebuild: dict[str, Any] | None, audit: bool = True, **job_fields: Any) -> PipelineSpec:
    raw = copy.deepcopy(BASE)
    raw["job"].update(job_fields)
    if audit:
        raw["audit"] = AUDIT
    if rebuild is not None:
        raw["rebuild"] = rebuild
    return parse_spec(raw)


def history(nonce: str = "n1", first: str = "2026-03-01", last: str | None = "2026-03-05", **more: Any
            ) -> dict[str, Any]:
    return {"nonce": nonce, "history": {"from": first, **({"to": last} if last else {}), **more}}


def live(nonce: str = "n1", day: str = TODAY) -> dict[str, Any]:
    return {"nonce": nonce, "live": {"day": day}}


def run(s: PipelineSpec, status: PipelineStatus, obs: Observation | None = None, **settings: Any) -> list[Any]:
    """decide's actions without the Records that only fold the observation into status."""
    actions = decide(s, 1, status, obs or seen(job()), NOW, SETTINGS.model_copy(update=settings))
    return [a for a in actions if not (isinstance(a, Record) and set(a.fields()) <= {"job_status", "ingest"}
                                       and not a.events)]


def rebuild_records(actions: list[Any]) -> list[RebuildStatus | None]:
    return [a.fields()["rebuild"] for a in actions if isinstance(a, Record) and "rebuild" in a.fields()]


def events(actions: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.type, e.reason, e.message) for a in actions if isinstance(a, Record) for e in a.events]


def effects(actions: list[Any]) -> list[Any]:
    return [a for a in actions if not isinstance(a, Record)]


def with_rebuild(**fields: Any) -> PipelineStatus:
    status: PipelineStatus = running_status(rebuild=fields)
    return status


# ---- history -------------------------------------------------------------------------------------

def test_a_new_history_nonce_creates_exactly_one_job_and_nothing_else() -> None:
    s = spec(history())
    assert run(s, running_status()) == [CreateRebuildJob(s, RebuildStatus(
        nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-05", started_at=iso(NOW)))]


def test_the_same_nonce_again_does_nothing_whatever_its_outcome() -> None:
    for phase in ("Succeeded", "Failed", "Rejected"):
        status = with_rebuild(nonce="n1", kind="history", phase=phase, days="2026-03-01..2026-03-05",
                              job="roastery-rebuild-x", startedAt=ago(60), finishedAt=ago(30))
        assert run(spec(history()), status) == []


def test_a_new_nonce_while_one_runs_waits_for_it() -> None:
    status = with_rebuild(nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-05",
                          job="j1", startedAt=ago(60))
    assert run(spec(history(nonce="n2")), status, seen(job(), rebuild_job=RebuildJobObservation("j1", "running"))) == []


def test_a_history_rebuild_of_one_day_and_one_store_runs_that_in_the_job() -> None:
    s = spec(history(last=None, store="store-01"))
    (action,) = run(s, running_status())
    assert action.rebuild.days == "2026-03-01..2026-03-01"
    rendered = children.rebuild_job("roastery", s, action.rebuild, "coffee-rt-coffee-rt-roastery", {})
    assert rendered["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "rebuild", "--from", "2026-03-01", "--to", "2026-03-01", "--store", "store-01"]


@pytest.mark.parametrize(("outcome", "phase", "event", "message"), [
    (RebuildJobObservation("j1", "succeeded"), "Succeeded", ("Normal", "RebuildSucceeded"), "Job j1 succeeded"),
    (RebuildJobObservation("j1", "failed", "BackoffLimitExceeded: Job has reached the specified backoff limit"),
     "Failed", ("Warning", "RebuildFailed"),
     "Job j1 failed: BackoffLimitExceeded: Job has reached the specified backoff limit; its log: kubectl logs job/j1"),
    (RebuildJobObservation("j1", "missing"), "Failed", ("Warning", "RebuildFailed"),
     "Job j1 is gone (deleted before it finished)"),
])
def test_the_jobs_end_is_the_rebuilds_end(outcome: RebuildJobObservation, phase: str, event: tuple[str, str],
                                          message: str) -> None:
    running = {"nonce": "n1", "kind": "history", "phase": "Running", "days": "2026-03-01..2026-03-05", "job": "j1",
               "startedAt": ago(60)}
    actions = run(spec(history()), with_rebuild(**running), seen(job(), rebuild_job=outcome))
    assert rebuild_records(actions) == [RebuildStatus.model_validate(
        {**running, "phase": phase, "finishedAt": iso(NOW), "message": message})]
    assert events(actions) == [(*event, f"history rebuild n1: {message}")]
    assert effects(actions) == []


def test_a_running_job_is_waited_for() -> None:
    status = with_rebuild(nonce="n1", kind="history", phase="Running", job="j1", startedAt=ago(60))
    assert run(spec(history()), status, seen(job(), rebuild_job=RebuildJobObservation("j1", "running"))) == []
    assert run(spec(history()), status, seen(job())) == []  # not observed this round


def test_a_history_request_replaced_before_its_job_was_created_ends_without_one() -> None:
    status = with_rebuild(nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-05",
                          startedAt=ago(60))
    actions = run(spec(history(nonce="n2")), status)
    assert [(r.nonce, r.phase, r.message) for r in rebuild_records(actions) if r is not None] == [
        ("n1", "Failed", "spec.rebuild changed before its Job was created; nothing was changed")]
    (create,) = effects(actions)  # and n2 is taken at once
    assert (create.rebuild.nonce, create.rebuild.phase) == ("n2", "Running")


def test_history_jobs_are_decided_while_flink_is_unreachable() -> None:
    s = spec(history())
    assert effects(run(s, running_status(), Observation(flink_error="Flink REST: ConnectError"))) == [
        CreateRebuildJob(s, RebuildStatus(nonce="n1", kind="history", phase="Running",
                                          days="2026-03-01..2026-03-05", started_at=iso(NOW)))]


# ---- bad requests: Rejected, nothing changed ------------------------------------------------------

@pytest.mark.parametrize(("s", "problem"), [
    (spec(live(day="2026-03-12")),
     "spec.rebuild.live.day 2026-03-12: the live numbers hold only the current business day (and yesterday's until "
     "its keys expire), so live takes 2026-03-13 or later; rebuild older days with spec.rebuild.history"),
    (spec(live(day="2026-03-15")),
     "spec.rebuild.live.day 2026-03-15 has not begun in any store's zone (today is 2026-03-14 at the latest)"),
    (spec(live(), state="suspended"), "a live rebuild replaces the running job, and spec.job.state is suspended"),
    (spec(history(first="2026-03-15", last="2026-03-16")),
     "spec.rebuild.history.from 2026-03-15 has not begun in any store's zone (today is 2026-03-14 at the latest)"),
    (spec(history(first="2026-03-05", last="2026-03-01")),
     "spec.rebuild.history.to 2026-03-01 is before from 2026-03-05"),
    (spec(history(first="2026-01-01", last="2026-03-05")), "spec.rebuild.history covers at most 62 days after from"),
    (spec(history(), audit=False), "spec.rebuild runs in the auditor's image, so it needs spec.audit"),
])
def test_a_request_that_cannot_be_carried_out_is_rejected_and_changes_nothing(s: PipelineSpec, problem: str) -> None:
    status, obs = running_status(), seen(job())
    if s.job.state == "suspended":
        status = running_status(stopped={"reason": "suspend", "restorePath": "file:/sp/1", "restoreKind": "savepoint",
                                         "at": ago(60)})
        obs = seen(job("FINISHED"))
    actions = run(s, status, obs)
    assert effects(actions) == []
    (rejected,) = rebuild_records(actions)
    assert rejected is not None
    assert (rejected.nonce, rejected.phase, rejected.message, rejected.job, rejected.step) == (
        "n1", "Rejected", f"{problem}; nothing was changed", None, None)
    assert events(actions) == [("Warning", "RebuildRejected", f"rebuild n1: {problem}; nothing was changed")]
    # and the next round does nothing more: the nonce has been acted on
    status = status.model_copy(update={"rebuild": rejected})
    assert run(s, status, obs) == []
    assert summarize(s, 1, status, obs, NOW, SETTINGS).conditions[3].model_dump() == {  # type: ignore[index]
        "type": "Rebuild", "status": "False", "reason": "Rejected",
        "message": f"{rejected.kind} rebuild n1: {problem}; nothing was changed",
        "last_transition_time": iso(NOW), "observed_generation": 1}


def test_a_live_rebuild_before_any_job_is_rejected() -> None:
    actions = run(spec(live()), PipelineStatus(), seen())
    assert rebuild_records(actions)[0].message == (  # type: ignore[union-attr]
        "a live rebuild replaces the running job, and no job has been submitted yet; nothing was changed")
    assert [type(a).__name__ for a in effects(actions)] == ["Submit"]  # the first submission, as without spec.rebuild


# ---- live: through the job lifecycle ---------------------------------------------------------------

LIVE_STOP = RebuildStatus(nonce="n1", kind="live", phase="Running", step="stop", days=TODAY,
                          replay_from_ms=REPLAY_MS, started_at=iso(NOW))


def test_a_new_live_nonce_stops_the_job_with_a_savepoint_in_the_same_round() -> None:
    actions = run(spec(live()), running_status())
    assert rebuild_records(actions) == [LIVE_STOP]
    assert events(actions) == [("Normal", "RebuildStarted",
                                "live rebuild n1 of 2026-03-14: stopping job job-1 with a savepoint, then replaying "
                                "the orders topic from 2026-03-13T23:55:00Z into a fresh job")]
    assert effects(actions) == [StopWithSavepoint("job-1", "rebuild", 1)]


def test_the_stopped_job_is_resubmitted_without_state_from_the_replay_start() -> None:
    status = running_status(rebuild=LIVE_STOP.dump(),
                            stopped={"reason": "rebuild", "restorePath": "file:/sp/1", "restoreKind": "savepoint",
                                     "at": ago(5)})
    (action,) = effects(run(spec(live()), status, seen(job("FINISHED"))))
    assert action == Submit(submission=2, generation=1, target=target(), restore_path=None, reason="rebuild",
                            allow_non_restored_state=False, nonces=Nonces(), upgrade=None, phase="Rebuilding",
                            recoveries=0, startup_ms=REPLAY_MS,
                            rebuild=LIVE_STOP.model_copy(update={"step": "follow"}))


def test_a_refused_replay_submission_is_retried_with_the_same_start() -> None:
    status = running_status(rebuild=LIVE_STOP.dump(), pending={
        "submission": 2, "generation": 1, "spec": fp(), "reason": "rebuild", "since": ago(40), "attempts": 1,
        "error": "busy", "retryAt": ago(5), "startupMs": REPLAY_MS})
    (action,) = effects(run(spec(live()), status, seen(job("FINISHED"))))
    assert (action.submission, action.restore_path, action.startup_ms, action.rebuild) == (
        2, None, REPLAY_MS, LIVE_STOP.model_copy(update={"step": "follow"}))


def test_once_the_replay_runs_a_job_follows_it() -> None:
    s = spec(live())
    follow = LIVE_STOP.model_copy(update={"step": "follow"})
    status = running_status(rebuild=follow.dump(), deployed={"generation": 1, "spec": fp(), "submittedAt": ago(5),
                                                              "startupMs": REPLAY_MS})
    assert effects(run(s, status, seen(job(completed=0, checkpoint=None, running_for=5)))) == [
        CreateRebuildJob(s, follow)]
    rendered = children.rebuild_job("roastery", s, follow, "coffee-rt-coffee-rt-roastery", {})
    assert rendered["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "rebuild", "--live", "--day", TODAY, "--replay-from-ms", str(REPLAY_MS), "--group",
        "coffee-rt-coffee-rt-roastery"]


def test_a_replay_lost_before_its_first_checkpoint_starts_again_from_the_replay_start() -> None:
    status = running_status(
        jobStatus={"jobId": "job-2", "state": "RUNNING", "submission": 2},
        submissions=2, deployed={"generation": 1, "spec": fp(), "submittedAt": ago(600), "startupMs": REPLAY_MS})
    actions = run(spec(None), status, seen(job("FAILED", job_id="job-2", completed=0, checkpoint=None)))
    (submit,) = effects(actions)
    assert (submit.reason, submit.restore_path, submit.startup_ms) == ("recover", None, REPLAY_MS)


def test_a_failed_savepoint_keeps_the_job_running_and_is_retried_after_the_back_off() -> None:
    blocked = {"action": "rebuild", "generation": 1, "message": "savepoint failed", "retryAt": iso(NOW + timedelta(
        seconds=30))}
    assert effects(run(spec(live()), running_status(rebuild=LIVE_STOP.dump(), blocked=blocked))) == []
    blocked["retryAt"] = ago(1)
    assert effects(run(spec(live()), running_status(rebuild=LIVE_STOP.dump(), blocked=blocked))) == [
        StopWithSavepoint("job-1", "rebuild", 1)]


def test_suspending_before_the_replay_ends_the_rebuild_as_failed() -> None:
    actions = run(spec(live(), state="suspended"), running_status(rebuild=LIVE_STOP.dump()))
    (failed,) = rebuild_records(actions)
    assert failed is not None and (failed.phase, failed.message) == (
        "Failed", "the pipeline was suspended before the replay was submitted; the job resumes from its savepoint")


def test_the_rebuild_condition_and_phase() -> None:
    s = spec(live())
    stopped = running_status(rebuild=LIVE_STOP.dump(), stopped={"reason": "rebuild", "restorePath": "file:/sp/1",
                                                                "restoreKind": "savepoint", "at": ago(5)})
    update = summarize(s, 1, stopped, seen(job("FINISHED")), NOW, SETTINGS)
    assert update.phase == "Rebuilding"
    assert {c.type: (c.status, c.reason) for c in update.conditions} == {  # type: ignore[union-attr]
        "Ready": ("False", "Stopped"), "Progressing": ("True", "Resubmitting"), "Degraded": ("False", "Healthy"),
        "Rebuild": ("Unknown", "Running")}
    done = running_status(rebuild=LIVE_STOP.model_copy(update={"phase": "Succeeded", "message": "Job j succeeded"})
                          .dump())
    update = summarize(s, 1, done, seen(job()), NOW, SETTINGS)
    assert [(c.type, c.status, c.reason, c.message) for c in update.conditions][3] == (  # type: ignore[union-attr]
        "Rebuild", "True", "Succeeded", "live rebuild n1: Job j succeeded")


# ---- the Job ---------------------------------------------------------------------------------------

def test_the_job_is_the_auditor_image_with_its_secrets_as_read_only_files() -> None:
    s = spec(history())
    rebuild = RebuildStatus(nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-05")
    overrides = {"default_timezone": "Europe/Berlin", "store_timezones": {"store-nyc": "America/New_York"}}
    name = job_name("roastery", "n1")
    labels = {"app.kubernetes.io/name": "coffee-rebuild", "app.kubernetes.io/instance": "roastery",
              "app.kubernetes.io/part-of": "coffee-rt", "app.kubernetes.io/managed-by": "coffee-rt-operator",
              "coffee-rt.dev/rebuild": "history"}
    assert children.rebuild_job("roastery", s, rebuild, "g", overrides) == {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels, "annotations": {"coffee-rt.dev/rebuild-nonce": "n1"}},
        "spec": {
            "backoffLimit": 1, "activeDeadlineSeconds": 10800, "ttlSecondsAfterFinished": 604800,
            "template": {"metadata": {"labels": labels}, "spec": {
                "restartPolicy": "Never", "automountServiceAccountToken": False,
                "securityContext": {**children.POD_SECURITY_CONTEXT, "fsGroup": 10001},
                "containers": [{
                    "name": "rebuild", "image": AUDIT["image"],
                    "args": ["rebuild", "--from", "2026-03-01", "--to", "2026-03-05"],
                    "env": [
                        {"name": "AUDITOR_KAFKA_BOOTSTRAP", "value": "kafka:9092"},
                        {"name": "AUDITOR_TOPIC", "value": "orders"},
                        {"name": "AUDITOR_DEFAULT_TIMEZONE", "value": "Europe/Berlin"},
                        {"name": "AUDITOR_STORE_TIMEZONES", "value": '{"store-nyc": "America/New_York"}'},
                        {"name": "AUDITOR_DEDUP_TTL", "value": "36h"},
                        {"name": "AUDITOR_POSTGRES_DSN_FILE", "value": "/etc/coffee-auditor/secrets/postgres/dsn"},
                        {"name": "AUDITOR_REDIS_URL_FILE", "value": "/etc/coffee-auditor/secrets/redis/url"},
                    ],
                    "volumeMounts": [
                        {"name": "postgres", "mountPath": "/etc/coffee-auditor/secrets/postgres", "readOnly": True},
                        {"name": "redis", "mountPath": "/etc/coffee-auditor/secrets/redis", "readOnly": True},
                    ],
                    "securityContext": children.SECURITY_CONTEXT,
                }],
                "volumes": [
                    {"name": "postgres", "secret": {"secretName": "pg", "defaultMode": 0o440,
                                                    "items": [{"key": "dsn", "path": "dsn"}]}},
                    {"name": "redis", "secret": {"secretName": "rd", "defaultMode": 0o440,
                                                 "items": [{"key": "url", "path": "url"}]}},
                ],
            }},
        },
    }
    assert (children.SECURITY_CONTEXT["runAsNonRoot"], children.SECURITY_CONTEXT["readOnlyRootFilesystem"],
            children.SECURITY_CONTEXT["allowPrivilegeEscalation"]) == (True, True, False)
    assert children.POD_SECURITY_CONTEXT["seccompProfile"] == {"type": "RuntimeDefault"}


def test_job_names_are_one_per_nonce_and_fit_a_label() -> None:
    assert job_name("roastery", "n1") == job_name("roastery", "n1") != job_name("roastery", "n2")
    assert job_name("roastery", "n1").startswith("roastery-rebuild-")
    assert len(job_name("x" * 253, "n1")) <= 63


class _Jobs:
    def __init__(self, fail: Exception | None = None) -> None:
        self.created: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, job: dict[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.created.append(job)


def _actor(jobs: _Jobs, status: PipelineStatus, events: list[Event], patches: list[dict[str, Any]]) -> Actor:
    class Store:
        def patch(self, merge_patch: dict[str, Any]) -> None:
            patches.append(merge_patch)

    return Actor(Pipeline("coffee-rt", "roastery", "uid-1", status.dump()), Store(), lambda n, k: "",
                 SETTINGS, lambda url: None, events.append, lambda: NOW, jobs)  # type: ignore[arg-type,return-value]


def test_act_creates_the_job_then_names_it_in_status() -> None:
    jobs, events, patches = _Jobs(), [], []  # type: ignore[var-annotated]
    s = spec(history())
    rebuild = RebuildStatus(nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-05",
                            started_at=iso(NOW))
    actor = _actor(jobs, running_status(), events, patches)
    assert actor.run(CreateRebuildJob(s, rebuild)) is True
    name = job_name("roastery", "n1")
    assert [j["metadata"]["name"] for j in jobs.created] == [name]
    assert actor.status.rebuild == rebuild.model_copy(update={"job": name})
    assert events == [Event("Normal", "RebuildJobCreated",
                            f"history rebuild n1 of 2026-03-01..2026-03-05: Job {name}")]


def test_act_reports_a_refused_job_and_leaves_status_alone() -> None:
    jobs, events, patches = _Jobs(RuntimeError("403 Forbidden")), [], []  # type: ignore[var-annotated]
    s = spec(history())
    rebuild = RebuildStatus(nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-05")
    actor = _actor(jobs, running_status(), events, patches)
    assert actor.run(CreateRebuildJob(s, rebuild)) is False
    assert (patches, actor.status.rebuild) == ([], None)
    name = job_name("roastery", "n1")
    assert events == [Event("Warning", "RebuildJobFailed",
                            f"could not create Job {name} for rebuild n1: 403 Forbidden; retrying")]


def test_the_replay_job_config_starts_its_source_at_the_replay_start() -> None:
    cfg = job_config("coffee-rt", "roastery", target(), lambda n, k: "postgresql://coffee:pw@pg:5432/coffee",
                     SETTINGS, startup_ms=REPLAY_MS)
    assert cfg.startup.model_dump() == {"mode": "timestamp", "timestamp_ms": REPLAY_MS}
    assert job_config("coffee-rt", "roastery", target(), lambda n, k: "postgresql://coffee:pw@pg:5432/coffee",
                      SETTINGS).startup.model_dump() == {"mode": "group-offsets"}


# ---- the operator's day rules are the rebuild's ---------------------------------------------------

ZONES = [("UTC",), ("Europe/Berlin", "America/New_York"), ("Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago"),
         ("Etc/GMT-5",)]


def _targets(zones: tuple[str, ...]) -> Targets:
    return Targets(kafka_bootstrap="-", topic="orders", postgres_dsn="-", redis_url="-", default_timezone=zones[0],
                   store_timezones={f"s-{n}": z for n, z in enumerate(zones[1:])}, dedup_ttl_ms=0)


@pytest.mark.parametrize("zones", ZONES)
def test_the_replay_start_is_the_one_the_rebuild_follows(zones: tuple[str, ...]) -> None:
    for day in ("2026-03-14", "2026-03-29", "2026-10-25", "2026-12-31"):
        expected = auditor_rebuild.replay_start(_targets(zones), day)
        assert replay_start_ms(date.fromisoformat(day), zones) == auditor_rebuild.ms(expected)


@pytest.mark.parametrize("zones", ZONES)
def test_the_live_days_are_the_ones_the_rebuild_takes(zones: tuple[str, ...]) -> None:
    for hours in range(0, 48, 5):
        now = NOW + timedelta(hours=hours)
        for offset in range(-3, 3):
            day = (now.date() + timedelta(days=offset))
            try:
                auditor_rebuild.check_live_day(_targets(zones), day.isoformat(), now)
                theirs = True
            except auditor_rebuild.RebuildInputError:
                theirs = False
            assert (live_day_problem(day, zones, now) is None) == theirs, (zones, now, day)
