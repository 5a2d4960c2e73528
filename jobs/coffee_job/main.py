"""Entry point: ``python -m coffee_job.main --config-json '{...}'`` (PythonDriver ``-pym coffee_job.main``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from coffee_jobconfig.model import ConfigError, load


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cfg = load(argv)
    except ConfigError as exc:
        print(f"coffee_job: {exc}", file=sys.stderr)
        return 2
    from coffee_job.pipeline import build, create_environments

    env, t_env = create_environments(cfg)
    build(env, t_env, cfg)
    env.execute(cfg.job_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
