"""``coffee-rt deploy``: the dev stack of infra/ onto the local one-node cluster with the real Pulumi engine.

Steps: the Pulumi CLI and Kubernetes provider (``coffee_rt.pulumi.build``, cached), the running
cluster of ``coffee-rt local up cluster`` (never started here: it needs root and owns the host's
KUBE-* chains), the project's images built and imported into its containerd, then ``pulumi up`` of
the stack through the Automation API (``coffee_rt.pulumi.stack``, in infra's environment).

No registry is reachable, so the public images the program names by default (Kafka, Postgres,
Redis, the exporters) are the stand-ins of ``coffee_rt.cluster.images.STANDINS``, imported the same
way; the Kafka exporter has none and is left out (``images.kafkaExporter: null``). Volumes come from
the cluster's pool (``Cluster.ensure_storage``), whose released ones are wiped before ``up`` and after
``destroy``.

The stack's config is ``Pulumi.<stack>.yaml`` from the repository, with three local changes: the
images are the ones just built (``localhost/coffee-rt/...:dev``), ``kubernetes:kubeconfig`` names the
cluster's admin kubeconfig (the program's explicit provider uses it, never the ambient context), and
the credentials are generated once and kept in ``<state>/pulumi/credentials.json`` (mode 0600),
where the ingest and dashboard tokens can be read to send orders. Pulumi's state is a file
backend in ``<state>/pulumi/backend``, its secrets encrypted with a passphrase kept beside it.

Exit codes: 0 done; 1 ``pulumi`` failed (its message is printed); 3 a prerequisite is missing (no
running cluster, no Go, no buildah); 4 an image did not build.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coffee_rt.errors import CoffeeRtError, PrerequisiteError
from coffee_rt.paths import REPO_ROOT, TOOLS_DIR

Progress = Callable[[str], None]
PROJECT = "coffee-rt"
# Stack config image key -> the image's name in coffee_rt.cluster.images.IMAGES.
IMAGE_NAMES = {"ingest": "order-ingest", "flink": "flink", "operator": "operator", "dashboard": "dashboard",
               "auditor": "auditor"}
STORES = ("store-01", "store-02")


class DeployError(CoffeeRtError):
    """``pulumi up``/``destroy`` failed; the engine's message says which resource and why."""

    exit_code = 1


@dataclass(frozen=True)
class Credentials:
    """The local stack's secrets: passwords, and the tokens whose SHA-256 the stack config holds."""

    postgres_password: str
    redis_password: str
    ingest_tokens: dict[str, str]  # store id -> token
    dashboard_token: str
    # Every role's password derives from it (infra/credentials.py). Empty in a file made before it
    # existed: then it derives from the owner's password, so a later run still gets the same key.
    credentials_key: str = ""

    @classmethod
    def new(cls, stores: tuple[str, ...] = STORES) -> Credentials:
        return cls(secrets.token_hex(24), secrets.token_hex(24), {store: secrets.token_urlsafe(32) for store in stores},
                   secrets.token_urlsafe(32), secrets.token_hex(32))

    @property
    def roles_key(self) -> str:
        return self.credentials_key or hashlib.sha256(f"coffee-rt roles/{self.postgres_password}".encode()).hexdigest()

    def secret_config(self) -> dict[str, str]:
        """The ``coffee-rt:`` secret keys infra/config.py requires for an in-cluster dev stack."""
        token_file = {"tokens": [{"store_id": store, "sha256": _sha256(token), "label": "coffee-rt deploy"}
                                 for store, token in sorted(self.ingest_tokens.items())]}
        return {
            f"{PROJECT}:postgresPassword": self.postgres_password,
            f"{PROJECT}:redisPassword": self.redis_password,
            f"{PROJECT}:ingestTokens": json.dumps(token_file, separators=(",", ":")),
            f"{PROJECT}:dashboardTokensSha256": _sha256(self.dashboard_token),
            f"{PROJECT}:credentialsKey": self.roles_key,
        }


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_credentials(path: Path) -> Credentials:
    """The stack's credentials, made on first use (a later run must reuse them: a new password would roll Postgres)."""
    if path.is_file():
        return Credentials(**json.loads(path.read_text()))
    creds = Credentials.new()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(creds.__dict__, handle, indent=2)
    return creds


def node_network(node_ip: str, apiserver_port: int, dns_port: int) -> dict[str, Any]:
    """``network`` keys for the local cluster, whose API server and CoreDNS are processes on its node,
    not Pods: the stack's NetworkPolicies (kube-router enforces them there) let Pods reach them at the
    node IP, on the ports a Service's traffic has after kube-proxy's DNAT."""
    node = f"{node_ip}/32"
    return {"apiServerCidrs": [node], "apiServerPorts": [apiserver_port], "dnsCidrs": [node], "dnsPorts": [dns_port]}


def stack_config(stack_file: str, images: Mapping[str, str], kubeconfig: Path,
                 creds: Credentials, network: Mapping[str, Any] | None = None) -> dict[str, tuple[str, bool]]:
    """Pulumi config for the stack: key -> (value, secret). Maps and lists become JSON, as the CLI passes them.
    ``network`` keys are set into the stack file's ``network`` map."""
    config: dict[str, Any] = (yaml.safe_load(stack_file) or {}).get("config") or {}
    if network:
        config[f"{PROJECT}:network"] = {**(config.get(f"{PROJECT}:network") or {}), **network}
    result: dict[str, tuple[str, bool]] = {}
    for key, value in config.items():
        if isinstance(value, dict) and "secure" in value:
            continue  # encrypted with another stack's key: ours come from the credentials
        result[key] = (value if isinstance(value, str) else json.dumps(value, separators=(",", ":")), False)
    result[f"{PROJECT}:images"] = (json.dumps({**dict(images), "kafkaExporter": None}, separators=(",", ":")), False)
    result["kubernetes:kubeconfig"] = (str(kubeconfig), False)
    result.update({key: (value, True) for key, value in creds.secret_config().items()})
    return result


def _passphrase_file(folder: Path) -> Path:
    path = folder / "passphrase"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path


def _running_cluster(progress: Progress, settings: Any = None) -> Any:
    from coffee_rt.local.components.cluster import Cluster
    from coffee_rt.local.settings import LocalSettings

    cluster = Cluster(settings or LocalSettings.from_env())
    health = cluster.health()
    if not health.ok:
        raise PrerequisiteError(f"no running local cluster ({health.detail}): start it with "
                                "`coffee-rt local up cluster` (root), then run `coffee-rt deploy` again")
    progress(f"deploy: cluster {health.detail}")
    return cluster


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _standin_references() -> dict[str, str]:
    from coffee_rt.cluster.images import BASES, STANDINS

    return {_camel(key): BASES[name].reference(name) for key, name in STANDINS.items()}


def _pinned(builder: Any, built: Any) -> str:
    """The image also tagged by its id: a rebuilt image is a new reference, so `pulumi up` rolls its Pods
    (the session cluster's through the operator's savepoint upgrade); a fixed ``:dev`` tag would leave
    them running the old one."""
    pinned = f"{built.reference.rsplit(':', 1)[0]}:{built.image_id.removeprefix('sha256:')[:12]}"
    builder.buildah("tag", built.reference, pinned)
    return pinned


def _images(cluster: Any, cache: Path, progress: Progress) -> dict[str, str]:
    """Build the stack's images (buildah's layer cache: unchanged ones take seconds) and import them."""
    from coffee_rt.cluster.images import IMAGES, STANDINS, Builder

    missing = [name for name in IMAGE_NAMES.values() if name not in IMAGES]
    if missing:
        raise PrerequisiteError(f"coffee_rt.cluster.images has no recipe for {', '.join(missing)}")
    builder = Builder(cache)
    builder.ensure_pause()
    references = {key: _pinned(builder, builder.build(name, progress)) for key, name in IMAGE_NAMES.items()}
    references.update({_camel(key): builder.ensure_base(name, progress) for key, name in STANDINS.items()})
    cluster.import_images(sorted(references.values()), progress)
    return references


def run(action: str, progress: Progress, stack: str = "dev", settings: Any = None,
        overrides: Mapping[str, Any] | None = None, images: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Bring the stack to ``action`` (up, preview, destroy, up-no-changes); returns the RESULT summary.

    ``settings`` (a LocalSettings) names the local cluster, default the environment's; ``overrides``
    replace stack config keys (``coffee-rt:pipeline`` -> a map), as ``pulumi config set`` would;
    ``images`` replace built images (``images`` config key -> a reference the node already has).
    """
    from coffee_rt.pulumi import build

    toolchain = build.ensure_built(progress)
    cluster = _running_cluster(progress, settings)
    state = cluster.stack_settings.state_dir / "pulumi"
    stack_file = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise PrerequisiteError(f"no stack file {stack_file}")
    if action == "destroy":
        from coffee_rt.cluster.images import IMAGES

        built = {key: IMAGES[name].reference(name) for key, name in IMAGE_NAMES.items() if name in IMAGES}
        built.update(_standin_references())
    else:
        built = _images(cluster, cluster.stack_settings.cache_dir, progress)
        cluster.ensure_storage(progress)
    creds = load_credentials(state / "credentials.json")
    node = node_network(cluster.node_ip, cluster.stack_settings.cluster_apiserver_port,
                        cluster.stack_settings.coredns_port)
    config = stack_config(stack_file.read_text(), {**built, **(images or {})}, cluster.kubeconfig, creds, node)
    for key, value in (overrides or {}).items():
        config[key] = (value if isinstance(value, str) else json.dumps(value, separators=(",", ":")), False)
    backend = state / "backend"
    backend.mkdir(parents=True, exist_ok=True)
    spec = {
        "action": action, "stack": stack, "project": PROJECT, "work_dir": str(state / "work"),
        "backend_url": f"file://{backend}", "pulumi_root": str(toolchain.root), "pulumi_home": str(toolchain.home),
        "env": {**toolchain.env(), "PULUMI_CONFIG_PASSPHRASE_FILE": str(_passphrase_file(state)),
                # A safety net under the explicit provider: nothing falls back to ~/.kube/config.
                "KUBECONFIG": str(cluster.kubeconfig)},
        "config": config,
    }
    progress(f"deploy: pulumi {action} of stack {stack} (state {backend})")
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="coffee-rt-deploy-", delete=False) as handle:
        json.dump(spec, handle)
    try:
        result = _run_stack(Path(handle.name), progress)
    finally:
        os.unlink(handle.name)
    if action == "destroy":
        cluster.ensure_storage(progress)  # the stack's volumes, released by the namespace's deletion, wiped
    return result


def _run_stack(spec: Path, progress: Progress) -> dict[str, Any]:
    """``coffee_rt.pulumi.stack`` in infra's environment; its lines become progress, RESULT the answer."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TOOLS_DIR)])}
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen(["uv", "run", "--frozen", "--project", str(REPO_ROOT / "infra"), "python", "-m",
                                "coffee_rt.pulumi.stack", str(spec)], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    result: dict[str, Any] | None = None
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip("\n")
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
            continue
        tail = [*tail, line][-60:]
        progress(f"pulumi: {line}")
    code = process.wait()
    if code != 0 or result is None:
        raise DeployError(f"pulumi failed (exit {code}); last lines:\n" + "\n".join(tail))
    return result


def describe(result: Mapping[str, Any]) -> str:
    """One line for the user: what changed, how long it took."""
    changes = ", ".join(f"{count} {kind}" for kind, count in sorted(result["changes"].items())) or "nothing"
    return f"pulumi {result['action']}: {changes} in {result['seconds']:.0f} s"
