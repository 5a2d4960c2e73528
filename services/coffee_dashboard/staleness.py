"""Is what the page shows live? One pure rule, shared by the API, the stream and the tests.

The seed's failure was a dashboard showing 0 orders while there was a line out of the door. So a
number is never shown without its freshness, and "no update for a while" is split by evidence:
a quiet shop (job RUNNING, nothing waiting in Kafka) is a warning; orders waiting in Kafka, a job
that is not running, or no way to tell, is critical. No Redis at all is "down".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from coffee_flink.states import ACTIVE, TERMINAL, TRANSITIONAL

State = Literal["live", "stale", "down"]
Severity = Literal["ok", "warning", "critical"]
# Not counting orders and not coming back by itself: over, on its way out (CANCELLING ends CANCELED,
# FAILING ends FAILED; a failure Flink recovers from is RESTARTING instead), suspended, or no job.
JOB_DOWN_STATES = TERMINAL | TRANSITIONAL | {"MISSING"}


def job_severity(job_state: str) -> Severity:
    """How the ops panel marks a job state: ``ok`` RUNNING; ``warning`` on its way (back) to
    running (the other active states: INITIALIZING, CREATED, RESTARTING, RECONCILING); ``critical``
    for the states the banner calls down and any state this rule does not know."""
    if job_state == "RUNNING":
        return "ok"
    return "warning" if job_state in ACTIVE else "critical"


@dataclass(frozen=True)
class PipelineStatus:
    state: State
    severity: Severity
    headline: str
    detail: str
    last_update_ms: int | None
    age_s: float | None
    stale_after_s: float
    now_ms: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _orders(n: int) -> str:
    return f"{n} order" if n == 1 else f"{n} orders"


def assess(now_ms: int, redis_error: str | None, last_update_ms: int | None, stale_after_s: float,
           job_state: str | None = None, lag: int | None = None, ops_note: str = "",
           arrived: int | None = None) -> PipelineStatus:
    """``job_state``/``lag`` are None when the ops panel could not tell (not configured or unreachable);
    ``ops_note`` says why, for the banner. ``arrived``: records written to the orders topic since
    the last live update (None: unknown). A job that reads orders (lag 0) but whose live numbers
    do not move is not a quiet shop."""
    age = None if last_update_ms is None else max(0.0, (now_ms - last_update_ms) / 1000)

    def status(state: State, severity: Severity, headline: str, detail: str) -> PipelineStatus:
        return PipelineStatus(state, severity, headline, detail, last_update_ms, age, stale_after_s, now_ms)

    if redis_error is not None:
        return status("down", "critical", "Pipeline down: the dashboard cannot reach Redis",
                      f"{redis_error.rstrip('. ')}. The numbers shown are the last ones received and are NOT live.")
    if job_state in JOB_DOWN_STATES:
        what = "not deployed" if job_state == "MISSING" else job_state
        return status("down", "critical", f"Pipeline down: the Flink job is {what}",
                      "New orders are not being counted: the numbers shown stop at the last update.")
    if age is None:
        return status("stale", "critical", "No live data yet",
                      "Redis holds no update from the job for any store: it has not counted an order yet.")
    if age <= stale_after_s:
        return status("live", "ok", "Live", "")
    quiet = human_age(age)
    if lag is not None and lag > 0:
        return status("stale", "critical", f"Stale: no update for {quiet}, {_orders(lag)} waiting in Kafka",
                      "The job is behind or stuck: the real sales are higher than the numbers shown.")
    if arrived is not None and arrived > 0:
        return status("stale", "critical", f"Stale: no update for {quiet}, though {_orders(arrived)} arrived since",
                      "The job read them but the live numbers did not move: its Redis writes are failing, or "
                      "they are duplicates or orders of another business day.")
    if lag == 0 and job_state == "RUNNING":
        return status("stale", "warning", f"No new orders for {quiet}",
                      "The pipeline is up (job RUNNING, no orders waiting in Kafka): a quiet period.")
    why = ops_note or "job state or Kafka lag unknown"
    return status("stale", "critical", f"Stale: no update for {quiet}",
                  f"Cannot confirm the pipeline is healthy ({why}): the numbers may be behind.")
