"""Where the job's secret files are in Kubernetes: the Flink session cluster (infra) mounts each
Secret a pipeline's sinks name read-only at ``<CLUSTER_SECRETS_DIR>/<secret name>/``, one file per
key, in the JobManager and every TaskManager; the operator names those files in the job's config.
"""

from __future__ import annotations

CLUSTER_SECRETS_DIR = "/etc/coffee-rt/secrets"
# The key of the Postgres Secret holding the password alone (its DSN key holds host, user, database).
POSTGRES_PASSWORD_KEY = "password"


def mounted_file(secret: str, key: str, root: str = CLUSTER_SECRETS_DIR) -> str:
    """The path of a Secret's key as the Flink pods see it."""
    for part, what in ((secret, "secret name"), (key, "secret key")):
        if not part or "/" in part or part in (".", ".."):
            raise ValueError(f"{what} {part!r} cannot name a mounted file")
    return f"{root.rstrip('/')}/{secret}/{key}"
