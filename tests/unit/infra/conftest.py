"""The Pulumi program run in-process with mocks (infra.mockrun) for the example stacks.

infra/ is a folder at the repository root, not an installed package: put the root on sys.path.
"""

from __future__ import annotations

import sys

from coffee_rt.paths import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pytest

from infra import mockrun

DEV_SECRETS = ["postgresPassword", "redisPassword", "ingestTokens", "dashboardTokensSha256", "credentialsKey"]
PROD_SECRETS = [*DEV_SECRETS, "dashboardSessionKey", "slackWebhookUrl", "s3AccessKeyId", "s3SecretAccessKey"]


def run_stack(stack: str, secrets: list[str], overrides: dict[str, str] | None = None,
              drop: tuple[str, ...] = ()) -> mockrun.Run:
    values, secret_keys = mockrun.with_placeholder_secrets(mockrun.stack_values(stack), secrets)
    values.update(overrides or {})
    for key in drop:
        values.pop(key)
    return mockrun.run(values, secret_keys, stack)


@pytest.fixture(scope="session")
def dev() -> mockrun.Run:
    return run_stack("dev", DEV_SECRETS)


@pytest.fixture(scope="session")
def prod() -> mockrun.Run:
    return run_stack("prod", PROD_SECRETS)
