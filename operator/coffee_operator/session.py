"""The session cluster's image, owned by the job lifecycle.

The job's code runs in the session cluster's JobManager and TaskManagers, so a new job image is a
new job: it must reach those Pods between the savepoint of the old job and the submission of the
new one, never under a running job (a restarted TaskManager would run new code on old state
without a savepoint). So a submission whose target names an image waits until every Deployment of
``spec.job.sessionDeployments`` runs that image in all its containers and has rolled out;
``RollSession`` sets the image. The same holds for a rollback: its submission waits for the old
image to be back.
"""

from __future__ import annotations

from dataclasses import dataclass

from coffee_operator.observation import SessionDeployment


@dataclass(frozen=True)
class RollSession:
    """Set ``image`` on every container of ``deployments`` (those not running it yet)."""

    image: str
    deployments: tuple[SessionDeployment, ...]


@dataclass(frozen=True)
class Wait:
    """The submission waits: the Deployments are rolling out, or cannot be read (``problem``)."""

    problem: str | None = None


def before_submit(image: str, names: tuple[str, ...],
                  observed: tuple[SessionDeployment, ...] | None) -> RollSession | Wait | None:
    """What must happen before a submission of a job whose image is ``image``: None when the session
    cluster runs it (rolled out), a RollSession when some Deployment runs another, else a Wait."""
    if not names:
        return None  # no Deployments named: the image is the session cluster's business
    if observed is None:
        return Wait()  # not read this round (the API server erred): try again next round
    seen = {d.name: d for d in observed}
    missing = [name for name in names if name not in seen or not seen[name].images]
    if missing:
        return Wait(f"session cluster Deployment(s) {', '.join(missing)} not found; the job waits for them "
                    f"to run image {image}")
    stale = tuple(seen[name] for name in names if seen[name].images != {image})
    if stale:
        return RollSession(image, stale)
    if not all(seen[name].settled for name in names):
        return Wait()
    return None
