"""Run the Pulumi program in-process with ``pulumi.runtime.set_mocks`` and capture what it would create.

No pulumi CLI and no cluster: every resource registration is recorded (type, name, parent,
dependencies, inputs with secrets still marked), and the Kubernetes ones render to plain
manifests. The unit tests, the policy tests and the schema / server dry-run tests all use it;
``python -m infra.mockrun dev`` prints the manifests of a stack file (secrets made up).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, settings
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import config, program
from infra.paths import REPO_ROOT

# Made-up credentials for renders and tests; the real ones are Pulumi config secrets.
PLACEHOLDER_SECRETS = {
    "postgresPassword": "placeholder-postgres-password",
    "postgresDsn": "postgresql://coffee:placeholder-postgres-password@db.example.internal:5432/coffee",
    "redisPassword": "placeholder-redis-password",
    "redisUrl": "redis://:placeholder-redis-password@cache.example.internal:6379/0",
    "ingestTokens": '{"tokens": [{"store_id": "store-01", "sha256": "' + "0" * 64 + '", "label": "placeholder"}]}',
    "dashboardTokensSha256": "1" * 64,
    "dashboardSessionKey": "placeholder-dashboard-session-key-of-32-characters-or-more",
    "credentialsKey": "placeholder-credentials-key-of-32-characters-or-more",
    "slackWebhookUrl": "https://hooks.slack.com/services/TPLACEHOLDER/BPLACEHOLDER/placeholder",
    "s3AccessKeyId": "placeholder-access-key",
    "s3SecretAccessKey": "placeholder-secret-key",
}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_special_sig_key) == _special_secret_sig


def plain(value: Any) -> Any:
    """Inputs as a manifest: secrets unwrapped, whole floats back to ints (protobuf has only doubles)."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    dependencies: list[str]
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False

    @property
    def manifest(self) -> dict[str, Any]:
        return plain(self.inputs)  # type: ignore[no-any-return]

    def secret_inputs(self) -> set[str]:
        """Top-level inputs that carry a secret (Pulumi marks the enclosing property)."""
        return {k for k, v in self.inputs.items() if is_secret(v)}


@dataclass
class Run:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    _manifests: list[dict[str, Any]] | None = None  # rendered once, after the run

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def find(self, type_: str, name: str) -> Registered:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {type_} named {name}")
        return found[0]

    def kubernetes(self) -> list[Registered]:
        return [r for r in self.resources if r.custom and r.type.startswith("kubernetes:")]

    def manifests(self) -> list[dict[str, Any]]:
        if self._manifests is None:
            self._manifests = [r.manifest for r in self.kubernetes()]
        return self._manifests

    def object(self, kind: str, name: str) -> dict[str, Any]:
        found = [m for m in self.manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} {kind} objects named {name}")
        return found[0]


class _Mocks(mocks.Mocks):
    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        raise NotImplementedError(f"the program made an unexpected provider call {args.token}")


class _Monitor(mocks.MockMonitor):
    """Records what the stock mock monitor drops: parents, dependencies, secret markers."""

    def __init__(self, run: Run) -> None:
        super().__init__(_Mocks())
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            from pulumi.runtime.rpc import deserialize_properties

            self.run.resources.append(Registered(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                custom=bool(request.custom), dependencies=list(request.dependencies),
                inputs=deserialize_properties(request.object), protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete)))
        return response


def _ensure_thread_loop() -> None:
    """Pulumi's runtime makes its futures on the thread's current event loop. A caller that ran
    ``asyncio.run`` earlier in the process left that unset, and Pulumi would fail; give it one."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run(values: dict[str, str], secret_keys: set[str], stack: str = "dev", into: Run | None = None) -> Run:
    """Validate ``values`` (raw Pulumi config) and run the program against mocks (recording ``into``)."""
    result = Run() if into is None else into
    _ensure_thread_loop()
    settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config(dict(values), sorted(secret_keys))
    mocks.set_mocks(_Mocks(), project=config.PROJECT, stack=stack, preview=False, monitor=_Monitor(result))
    outputs: dict[str, Any] = {}

    def main() -> None:
        outputs.update(program.build(config.load()))

    _sync_await(run_pulumi_func(main))
    result.outputs = outputs
    return result


def stack_values(stack: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """A stack file's config as the engine hands it to the program (objects as JSON strings)."""
    import json

    doc = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    out: dict[str, str] = {}
    for key, value in (doc.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            raise ValueError(f"{key}: encrypted values need the pulumi CLI; mockrun supplies placeholders")
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def with_placeholder_secrets(values: dict[str, str], keys: list[str]) -> tuple[dict[str, str], set[str]]:
    out = dict(values)
    names = set()
    for key in keys:
        full = f"{config.PROJECT}:{key}"
        out[full] = PLACEHOLDER_SECRETS[key]
        names.add(full)
    return out, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.mockrun",
        description="Render the manifests a stack would create (mocks, placeholder secrets)")
    parser.add_argument("stack", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--secret", action="append", default=[], metavar="KEY",
                        help="add a placeholder for this secret key (repeatable), e.g. postgresPassword")
    args = parser.parse_args(argv)
    values, secrets = with_placeholder_secrets(stack_values(args.stack), args.secret)
    try:
        result = run(values, secrets, args.stack)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    yaml.safe_dump_all(result.manifests(), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
