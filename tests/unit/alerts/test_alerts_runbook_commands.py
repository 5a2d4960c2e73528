"""Every command a runbook names exists and accepts the arguments shown: the project's CLI through its
own parser, `uv run` modules by running them (harmless ones), kubectl against resources this project
defines and through kubectl's own flag parsing. (Flink REST calls: tests/integration/alerts.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coffee_rt.alerts.rules import rule_files
from coffee_rt.alerts.runbooks import Command, commands, local_mitigation
from coffee_rt.cli import build_parser
from coffee_rt.errors import UsageError
from coffee_rt.k8s.kubectl import kubectl_path
from coffee_rt.local.stack import COMPONENTS
from coffee_rt.paths import REPO_ROOT

COMMANDS = commands()
PIPELINE = "roastery"  # infra's default pipeline name (infra/config.py PipelineConfig)
NAMESPACE = "coffee-rt"  # operator/manifests/namespace.yaml
# Object and app names as infra/context.py and coffee_operator.children name them (cross-checked below).
NAMES = {
    "APP_INGEST": "coffee-ingest", "APP_OPERATOR": "coffee-rt-operator", "APP_FLINK": "flink", "APP_KAFKA": "kafka",
    "APP_REDIS": "redis", "APP_POSTGRES": "postgres", "APP_REDIS_EXPORTER": "redis-exporter",
    "APP_POSTGRES_EXPORTER": "postgres-exporter", "APP_KAFKA_EXPORTER": "kafka-exporter",
    "FLINK_JOBMANAGER": "flink-jobmanager", "APP_DASHBOARD": "coffee-dashboard",
}
OBJECTS = {
    "cp": {PIPELINE}, "coffeepipeline": {PIPELINE},
    "deploy": {f"{PIPELINE}-ingest", NAMES["APP_OPERATOR"], NAMES["FLINK_JOBMANAGER"], "flink-taskmanager",
               NAMES["APP_REDIS_EXPORTER"], NAMES["APP_POSTGRES_EXPORTER"], NAMES["APP_KAFKA_EXPORTER"],
               NAMES["APP_DASHBOARD"]},  # infra/components/dashboard.py names its Deployment after the app
    "statefulset": {"postgres", "redis", "kafka"},
    "svc": {NAMES["FLINK_JOBMANAGER"]},
    # infra/components/monitoring.py: one PrometheusRule per alerts/<name>.rules.yaml, the AlertmanagerConfig.
    "prometheusrule": {f"coffee-rt-{p.name.split('.rules.')[0]}" for p in rule_files()},
    "alertmanagerconfig": {"coffee-rt-slack"},
}
APPS = {v for k, v in NAMES.items() if k.startswith("APP_")}


def by_kind(kind: str) -> list[Command]:
    return [c for c in COMMANDS if c.kind == kind]


def test_commands_are_found() -> None:
    assert len(by_kind("kubectl")) > 60
    assert len(by_kind("coffee-rt")) >= 10
    assert len(by_kind("curl")) >= 15
    assert len(by_kind("uv")) >= 4


def test_manifest_names_the_runbooks_rely_on() -> None:
    assert "shortNames: [cp]" in (REPO_ROOT / "operator" / "manifests" / "crd.yaml").read_text()
    assert f"name: {NAMESPACE}" in (REPO_ROOT / "operator" / "manifests" / "namespace.yaml").read_text()


def test_infra_and_operator_names_the_runbooks_rely_on() -> None:
    """Read as text: infra/ and the operator are separate programs with their own dependencies."""
    context = REPO_ROOT / "infra" / "context.py"
    children = REPO_ROOT / "operator" / "coffee_operator" / "children.py"
    config = REPO_ROOT / "infra" / "config.py"
    if not (context.exists() and children.exists() and config.exists()):
        pytest.skip("infra/ or the operator is not in this tree")
    text = context.read_text()
    for constant, value in NAMES.items():
        assert f'{constant} = "{value}"' in text, constant
    assert 'return f"{pipeline}-ingest"' in children.read_text()
    assert 'name: str = Field(default="roastery"' in config.read_text()
    monitoring = (REPO_ROOT / "infra" / "components" / "monitoring.py").read_text()
    assert 'name = "coffee-rt-" + ' in monitoring and 'AMC_NAME = "coffee-rt-slack"' in monitoring
    dashboard = (REPO_ROOT / "infra" / "components" / "dashboard.py").read_text()
    assert '"coffee-dashboard", metadata=h.meta(APP_DASHBOARD, ns' in dashboard
    for statefulset in OBJECTS["statefulset"]:
        component = (REPO_ROOT / "infra" / "components" / f"{statefulset}.py").read_text()
        assert "StatefulSet(" in component and f'h.meta("{statefulset}", ns' in component, statefulset


@pytest.mark.parametrize("command", by_kind("coffee-rt"), ids=lambda c: f"{c.runbook}:{c.line}")
def test_coffee_rt_command_parses(command: Command) -> None:
    args = build_parser().parse_args(command.argv[1:])
    names = getattr(args, "components", None) or ([args.component] if getattr(args, "component", None) else [])
    assert set(names) <= set(COMPONENTS), names


def test_the_parser_check_catches_a_bad_command() -> None:
    with pytest.raises(UsageError):
        build_parser().parse_args(["local", "logs", "ingest", "--follow"])


@pytest.mark.parametrize("command", by_kind("kubectl"), ids=lambda c: f"{c.runbook}:{c.line}")
def test_kubectl_command_names_project_resources(command: Command) -> None:
    argv = command.argv
    assert argv[1:3] == ["-n", NAMESPACE], "every kubectl call names the namespace"
    verb = argv[3]
    end = argv.index("--") if "--" in argv else len(argv)
    rest = [a for i, a in enumerate(argv[4:end], start=4)
            if not a.startswith("-") and argv[i - 1] not in ("-l", "-o", "-p", "--type", "-c")]
    for i, arg in enumerate(argv):
        if arg == "-l":
            key, value = argv[i + 1].split("=")
            assert key == "app.kubernetes.io/name" and value in APPS, argv[i + 1]
        if arg.startswith("-l") and arg != "-l":
            raise AssertionError(arg)
    refs = [a for a in rest if "/" in a and not a.startswith(("{", "'", "http"))]
    for ref in refs:
        kind, name = ref.split("/", 1)
        assert name in OBJECTS.get(kind, set()), ref
    if verb in ("get", "describe", "patch") and rest and rest[0] in OBJECTS:
        kind = rest[0]
        names = rest[1:2]
        assert all(n in OBJECTS[kind] for n in names), rest
    if verb == "rollout":
        assert rest[0] in ("restart", "status") and refs


@pytest.mark.parametrize("command", by_kind("kubectl"), ids=lambda c: f"{c.runbook}:{c.line}")
def test_kubectl_accepts_the_flags(command: Command) -> None:
    """kubectl parses the whole command, then fails only on connecting to a server that is not there."""
    argv = [str(kubectl_path()), "--kubeconfig=/dev/null", "--server=https://127.0.0.1:1", "--token=none",
            "--request-timeout=2s", *command.argv[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, stdin=subprocess.DEVNULL)
    out = result.stdout + result.stderr
    assert "refused" in out, out[-1500:]


def test_kubectl_check_catches_a_bad_flag() -> None:
    argv = [str(kubectl_path()), "--kubeconfig=/dev/null", "--server=https://127.0.0.1:1", "--token=none",
            "-n", NAMESPACE, "logs", "deploy/roastery-ingest", "--tial=5"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert "refused" not in result.stdout + result.stderr
    assert "unknown flag: --tial" in result.stderr


@pytest.mark.parametrize("command", by_kind("uv"), ids=lambda c: f"{c.runbook}:{c.line}")
def test_uv_run_command_runs(command: Command) -> None:
    argv = command.argv
    assert argv[:3] == ["uv", "run", "python"], argv
    args = argv[3:argv.index(">")] if ">" in argv else argv[3:]
    if args[0].endswith(".py"):
        args = [*args, "--help"] if "--help" not in args else args
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False, timeout=120,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout


@pytest.mark.parametrize("command", by_kind("curl"), ids=lambda c: f"{c.runbook}:{c.line}")
def test_curl_commands_call_flink_rest(command: Command) -> None:
    url = next(a for a in command.argv if a.startswith("$FLINK/"))
    assert url.startswith(("$FLINK/jobs", "$FLINK/overview")), url


def test_local_mitigation_steps_in_the_order_written(tmp_path: Path) -> None:
    """What the runbook drills (tests/failure/test_runbook_drills.py) run after inducing the failure."""
    assert [c.line for c in local_mitigation("CoffeeRtPostgresDown")] == [
        "coffee-rt local up postgres postgres-exporter"]
    assert [c.line for c in local_mitigation("CoffeeRtFlinkJobNotRunning")] == ["coffee-rt local up flink job"]
    assert [c.line for c in local_mitigation("CoffeeRtKafkaBrokerDown")] == [
        "coffee-rt local down kafka", "coffee-rt local up kafka"]
    (tmp_path / "X.md").write_text(
        "# X\n\n## Diagnosis\n`coffee-rt local status`\n\n## Mitigation\n- first `coffee-rt local up a`, then\n"
        "  ```sh\n  coffee-rt local down b\n  kubectl -n coffee-rt get cp roastery\n  coffee-rt local up b\n  ```\n"
        "- `coffee-rt local up <component>` is for reading\n\n## Escalation\n`coffee-rt local up c`\n")
    assert [c.line for c in local_mitigation("X", tmp_path)] == [
        "coffee-rt local up a", "coffee-rt local down b", "coffee-rt local up b"]
