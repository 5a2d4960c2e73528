"""Run ``pulumi up``/``destroy``/``preview`` of a stack through the Automation API, in infra's environment.

``coffee-rt deploy`` (root environment, no Pulumi SDK there) writes a spec file and runs
``uv run --project infra python -m coffee_rt.pulumi.stack SPEC``. The program is infra's own
(``infra.program.build``) run inline: the Python SDK serves it to the engine in this process, so no
``pulumi-language-python`` host is needed (the Go module proxy does not serve it). The CLI is the one
``coffee_rt.pulumi.build`` compiled, with a file backend and a PULUMI_HOME that holds only our plugin.

Output: one line per resource step (``create kubernetes:apps/v1:Deployment kafka``, then ``created
... (12 s)``), Pulumi's warnings and errors, and a last line ``RESULT {json}`` with the operation,
the resource changes by kind, the outputs and the wall time. Exit 0 on success, 1 when the
operation failed (the engine's message is printed), 2 for a bad spec.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACTIONS = ("up", "preview", "destroy", "up-no-changes")


@dataclass(frozen=True)
class Spec:
    """What to run, as ``coffee_rt.deploy`` wrote it (all paths absolute)."""

    action: str
    stack: str
    project: str
    work_dir: str
    backend_url: str
    pulumi_root: str
    pulumi_home: str
    env: dict[str, str]
    config: dict[str, tuple[str, bool]]  # key -> (value, secret)

    @classmethod
    def load(cls, path: Path) -> Spec:
        data = json.loads(path.read_text())
        data["config"] = {key: (str(value), bool(secret)) for key, (value, secret) in data["config"].items()}
        spec = cls(**data)
        if spec.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {spec.action!r}")
        return spec


def _sdk(module: str) -> Any:
    """A module of infra's environment (the SDK, infra itself), loaded by name.

    The root environment (its mypy) has neither, and its ``tools/pulumi`` folder (the Go wrapper
    modules) would pass for a ``pulumi`` namespace package there.
    """
    return importlib.import_module(module)


def _program() -> None:
    """infra/__main__.py's body: validate the config once, build everything, export the outputs."""
    pulumi, config, program = _sdk("pulumi"), _sdk("infra.config"), _sdk("infra.program")
    try:
        settings = config.load()
    except config.ConfigError as exc:
        raise SystemExit(f"coffee-rt: {exc}") from None
    for key, value in program.build(settings).items():
        pulumi.export(key, value)


class _Events:
    """Engine events -> one progress line per resource step that changes something."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, event: Any) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            if meta.op.value in ("same", "read", "refresh"):
                return
            self.started[meta.urn] = time.monotonic()
            _say(f"{meta.op.value} {meta.type} {_name(meta.urn)}")
        elif event.res_outputs_event is not None:
            meta = event.res_outputs_event.metadata
            if meta.urn in self.started:
                _say(f"{_past(meta.op.value)} {meta.type} {_name(meta.urn)} "
                     f"({time.monotonic() - self.started.pop(meta.urn):.0f} s)")
        elif event.res_op_failed_event is not None:
            meta = event.res_op_failed_event.metadata
            _say(f"FAILED {meta.op.value} {meta.type} {_name(meta.urn)}")
        elif event.diagnostic_event is not None:
            diag = event.diagnostic_event
            if diag.severity in ("warning", "error"):
                where = f" {_name(diag.urn)}" if diag.urn else ""
                _say(f"{diag.severity}{where}: {diag.message.strip()}")


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _past(op: str) -> str:
    return {"create": "created", "update": "updated", "delete": "deleted", "replace": "replaced",
            "create-replacement": "created replacement", "delete-replaced": "deleted replaced"}.get(op, f"{op} done")


def _say(line: str) -> None:
    print(line, flush=True)


def run(spec: Spec) -> dict[str, Any]:
    auto = _sdk("pulumi.automation")

    Path(spec.work_dir).mkdir(parents=True, exist_ok=True)
    command = auto.PulumiCommand(root=spec.pulumi_root)
    options = auto.LocalWorkspaceOptions(
        work_dir=spec.work_dir,
        pulumi_home=spec.pulumi_home,
        pulumi_command=command,
        env_vars={**spec.env, "PULUMI_BACKEND_URL": spec.backend_url},
        project_settings=auto.ProjectSettings(name=spec.project, runtime="python",
                                              backend=auto.ProjectBackend(url=spec.backend_url)),
    )
    stack = auto.create_or_select_stack(stack_name=spec.stack, project_name=spec.project, program=_program,
                                        opts=options)
    stack.set_all_config({key: auto.ConfigValue(value=value, secret=secret)
                          for key, (value, secret) in spec.config.items()})
    events = _Events()
    started = time.monotonic()
    if spec.action == "destroy":
        result: Any = stack.destroy(on_event=events, color="never")
        outputs: dict[str, Any] = {}
    elif spec.action == "preview":
        preview = stack.preview(on_event=events, color="never")
        return {"action": spec.action, "changes": dict(preview.change_summary), "outputs": {},
                "seconds": round(time.monotonic() - started, 1)}
    else:
        result = stack.up(on_event=events, color="never", expect_no_changes=spec.action == "up-no-changes")
        outputs = {key: ("[secret]" if out.secret else out.value) for key, out in result.outputs.items()}
    return {"action": spec.action, "changes": dict(result.summary.resource_changes or {}), "outputs": outputs,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m coffee_rt.pulumi.stack SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = Spec.load(Path(argv[0]))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"coffee-rt: bad spec {argv[0]}: {exc}", file=sys.stderr)
        return 2
    auto = _sdk("pulumi.automation")
    try:
        summary = run(spec)
    except auto.CommandError as exc:
        print(f"coffee-rt: pulumi {spec.action} failed:\n{str(exc)[-6000:]}", file=sys.stderr, flush=True)
        return 1
    _say("RESULT " + json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
