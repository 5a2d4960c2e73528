"""The project's images, built from its own Dockerfiles without a Docker engine.

No image registry is reachable here, so each public base image a Dockerfile names by default
(``python:3.11.14-slim-bookworm``, ...) is stood in for by one made from Debian bookworm's packages
with mmdebstrap, and the Dockerfiles are built as they are by buildah (daemonless), with the base
passed as the build argument a user would leave at its default. Base images and buildah's layer
cache live in the project cache, so only a changed Dockerfile or context rebuilds.

The built images are named fully (``localhost/coffee-rt/order-ingest:dev``): CRI and a pod's
``image:`` then name the same thing. ``python -m coffee_rt.cluster.images [NAME...]`` builds them
(all by default) and imports them into the local cluster when it runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coffee_rt.errors import PrerequisiteError, StartupError
from coffee_rt.local.components import exporters
from coffee_rt.local.installers import maven_jars
from coffee_rt.paths import REPO_ROOT, TOOLS_DIR, cache_dir

Progress = Callable[[str], None]
REGISTRY = "localhost/coffee-rt"
TAG = "dev"
SUITE = "bookworm"
# The host's own extra CAs (an egress proxy's, a company's) go into the base images, so that pip and
# npm inside a build trust what this machine trusts; on a machine with none this adds nothing.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


@dataclass(frozen=True)
class Base:
    """A stand-in for a public base image, made from Debian packages."""

    stands_for: str
    packages: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    hooks: Callable[[], list[str]] = lambda: []  # more mmdebstrap customize hooks, after the CA ones
    config: tuple[str, ...] = ()  # more `buildah config` arguments
    files: tuple[Path, ...] = ()  # files of ours the hooks put in
    # Before the packages: Java's postinst links its man pages, which fails where /usr/share/man is excluded.
    essential_hooks: tuple[str, ...] = ()

    def recipe_hash(self) -> str:
        # Paths inside the checkout are named relative to it: every clone of the same commit shares the base.
        hooks = [hook.replace(str(REPO_ROOT), "<repo>") for hook in self.hooks()]
        text = json.dumps([SUITE, self.packages, sorted(self.env.items()), _hooks(), hooks, self.config,
                           [_file_digest(path) for path in self.files], *self.essential_hooks], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def reference(self, name: str) -> str:
        return f"{REGISTRY}/base-{name}:{SUITE}-{self.recipe_hash()}"


_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FLINK_ENTRYPOINT = TOOLS_DIR / "images" / "flink-entrypoint.sh"
_USRLOCAL_PYTHON = ('cp -a "$1"/usr/bin/python3.11 "$1"/usr/local/bin/'
                    ' && cp -a "$1"/usr/lib/python3.11 "$1"/usr/local/lib/'
                    ' && cp -L "$1"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 "$1"/usr/local/lib/'
                    ' && ln -s python3.11 "$1"/usr/local/bin/python3 && ln -s python3 "$1"/usr/local/bin/python')
_MAN1 = 'mkdir -p "$1"/usr/share/man/man1'
_CA_ENV = {"PIP_CERT": _CA_BUNDLE, "NODE_EXTRA_CA_CERTS": _CA_BUNDLE}
KAFKA_FILES = TOOLS_DIR / "images" / "kafka"
POSTGRES_ENTRYPOINT = TOOLS_DIR / "images" / "postgres" / "docker-entrypoint.sh"
POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
# Debian's postgres package creates a cluster of its own on install unless told not to.
_NO_MAIN_CLUSTER = ('mkdir -p "$1"/etc/postgresql-common'
                    ' && echo "create_main_cluster = false" > "$1"/etc/postgresql-common/createcluster.conf')
BASES: dict[str, Base] = {
    # Debian's CPython 3.11 (the official image's minor); `python` and `pip` on PATH as there.
    "python": Base("python:3.11.14-slim-bookworm",
                   ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates"),
                   {"LANG": "C.UTF-8", **_CA_ENV}),
    "node": Base("node:20.19.5-bookworm-slim", ("nodejs", "npm", "ca-certificates"), {"LANG": "C.UTF-8", **_CA_ENV}),
    # As "python", and laid out as the official image is: CPython in /usr/local (jobs/Dockerfile
    # copies /usr/local/bin/python3.11, /usr/local/lib/python3.11 and libpython out of it).
    "python-usrlocal": Base("python:3.11.14-slim-bookworm",
                            ("python3", "python3-venv", "libpython3.11", "ca-certificates"),
                            {"LANG": "C.UTF-8", "PATH": _PATH, **_CA_ENV}, hooks=lambda: [_USRLOCAL_PYTHON]),
    "maven": Base("maven:3.9.9-eclipse-temurin-17", ("maven", "openjdk-17-jdk-headless", "ca-certificates-java"),
                  {"LANG": "C.UTF-8", "JAVA_HOME": "/usr/lib/jvm/java-17-openjdk-amd64"},
                  essential_hooks=(_MAN1,)),
    # Java 17 and the Flink distribution the apache-flink wheel (uv.lock) ships, in /opt/flink, owned
    # by the user flink (9999), with the official image's entrypoint contract.
    "flink": Base("flink:2.2.1-scala_2.12-java17", ("openjdk-17-jre-headless", "libpython3.11", "procps"),
                  {"LANG": "C.UTF-8", "FLINK_HOME": "/opt/flink", "PATH": f"/opt/flink/bin:{_PATH}"},
                  hooks=lambda: _flink_hooks(),
                  config=("--entrypoint", '["/docker-entrypoint.sh"]', "--cmd", "help", "--workingdir", "/opt/flink"),
                  files=(FLINK_ENTRYPOINT,), essential_hooks=(_MAN1,)),
    # Stand-ins for the public server images the Pulumi program names by default (STANDINS), each with
    # the contract of that image that infra/components relies on, and its user id.
    "kafka": Base("apache/kafka:4.1.1", ("openjdk-17-jre-headless", "ca-certificates"), {"LANG": "C.UTF-8"},
                  hooks=lambda: _kafka_hooks(),
                  config=("--entrypoint", '["/etc/kafka/docker/run"]', "--cmd", "[]", "--user", "1000:1000",
                          "--workingdir", "/opt/kafka"),
                  files=tuple(sorted(path for path in KAFKA_FILES.rglob("*") if path.is_file())),
                  essential_hooks=(_MAN1,)),
    "postgres": Base("postgres:15.14-bookworm", ("postgresql-15", "postgresql-client-15", "ca-certificates"),
                     {"LANG": "C.UTF-8", "PATH": f"{POSTGRES_BIN}:{_PATH}", "PGDATA": "/var/lib/postgresql/data"},
                     hooks=lambda: _postgres_hooks(),
                     config=("--entrypoint", '["/usr/local/bin/docker-entrypoint.sh"]', "--cmd", "postgres",
                             "--user", "999:999"),
                     files=(POSTGRES_ENTRYPOINT,), essential_hooks=(_NO_MAIN_CLUSTER,)),
    # Debian's Redis 7.0 for 7.4: the same server options and `redis-server -` (config on stdin).
    "redis": Base("redis:7.4.6-bookworm", ("redis-server", "redis-tools", "ca-certificates"), {"LANG": "C.UTF-8"},
                  hooks=lambda: ['rm -f "$1"/etc/redis/redis.conf'],
                  config=("--cmd", "redis-server", "--user", "999:999", "--workingdir", "/data")),
    "postgres-exporter": Base("quay.io/prometheuscommunity/postgres-exporter:v0.17.1", ("ca-certificates",),
                              hooks=lambda: _exporter_hooks("postgres_exporter"),
                              config=("--entrypoint", '["/bin/postgres_exporter"]', "--cmd", "[]",
                                      "--user", "65534:65534")),
    "redis-exporter": Base("oliver006/redis_exporter:v1.74.0", ("ca-certificates",),
                           hooks=lambda: _exporter_hooks("redis_exporter"),
                           config=("--entrypoint", '["/redis_exporter"]', "--cmd", "[]", "--user", "59000:59000")),
}
# Stack config image key (infra.config.Images) -> its stand-in in BASES. The Kafka exporter has none:
# its Go module is not on the module proxy, so `coffee-rt deploy` runs without it.
STANDINS = {"kafka": "kafka", "postgres": "postgres", "redis": "redis", "postgres_exporter": "postgres-exporter",
            "redis_exporter": "redis-exporter"}


@dataclass(frozen=True)
class Image:
    """One of the project's images: its Dockerfile (context: the repository root) and base arguments."""

    dockerfile: str
    bases: Mapping[str, str]  # build argument -> BASES key

    def reference(self, name: str) -> str:
        return f"{REGISTRY}/{name}:{TAG}"


IMAGES: dict[str, Image] = {
    "flink": Image("jobs/Dockerfile", {"FLINK_IMAGE": "flink", "PYTHON_IMAGE": "python-usrlocal",
                                       "MAVEN_IMAGE": "maven"}),
    "order-ingest": Image("services/coffee_ingest/Dockerfile", {"PYTHON_IMAGE": "python"}),
    "dashboard": Image("services/coffee_dashboard/Dockerfile", {"PYTHON_IMAGE": "python", "NODE_IMAGE": "node"}),
    "auditor": Image("services/coffee_auditor/Dockerfile", {"PYTHON_IMAGE": "python"}),
    "operator": Image("operator/Dockerfile", {"PYTHON_IMAGE": "python"}),
}
PAUSE = f"{REGISTRY}/pause:3.10"
PAUSE_SOURCE = TOOLS_DIR / "images" / "pause.c"


@dataclass(frozen=True)
class Built:
    reference: str
    image_id: str
    size_bytes: int
    seconds: float


def _hooks() -> list[str]:
    """mmdebstrap customize hooks: the host's extra CAs in, apt's downloaded lists out."""
    return [f"copy-in {LOCAL_CAS} /usr/local/share",
            'chroot "$1" update-ca-certificates && rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin']


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flink_dist() -> Path:
    """The Flink distribution inside the installed apache-flink wheel (bin/, conf/, lib/, opt/, plugins/)."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise PrerequisiteError("the apache-flink Python package is not installed (uv sync installs it)")
    return Path(spec.origin).parent


def _flink_hooks() -> list[str]:
    dist = _flink_dist()
    version = (dist / "version.py").read_text().rsplit("=", 1)[-1].strip().strip('"')
    parts = " ".join(str(dist / d) for d in ("bin", "conf", "lib", "opt", "plugins"))
    return [
        f'mkdir -p "$1"/opt/flink/log  # apache-flink {version}',
        f"copy-in {parts} /opt/flink",
        f"upload {FLINK_ENTRYPOINT} /docker-entrypoint.sh",
        'chmod 0755 "$1"/docker-entrypoint.sh && chroot "$1" groupadd --system --gid 9999 flink'
        ' && chroot "$1" useradd --system --uid 9999 --gid flink --home-dir /opt/flink --shell /bin/bash flink'
        ' && chroot "$1" chown -R flink:flink /opt/flink',
    ]


def _kafka_hooks() -> list[str]:
    """Kafka's jars (tools/maven/kafka, the local stack's), scripts with the distribution's names, appuser 1000."""
    jars = maven_jars("kafka", cache_dir())
    return [
        'mkdir -p "$1"/opt/kafka/libs "$1"/etc/kafka/docker "$1"/var/lib/kafka/data',
        f'cp {jars}/*.jar "$1"/opt/kafka/libs/',
        f"copy-in {KAFKA_FILES / 'bin'} {KAFKA_FILES / 'config'} /opt/kafka",
        f"upload {KAFKA_FILES / 'run'} /etc/kafka/docker/run",
        'chmod 0755 "$1"/etc/kafka/docker/run "$1"/opt/kafka/bin/*'
        ' && chroot "$1" groupadd --system --gid 1000 appuser'
        ' && chroot "$1" useradd --system --uid 1000 --gid appuser --home-dir /home/appuser --shell /bin/bash appuser'
        ' && chroot "$1" chown -R appuser:appuser /opt/kafka /var/lib/kafka /etc/kafka',
    ]


def _postgres_hooks() -> list[str]:
    """The entrypoint, and the postgres user at the official image's uid/gid 999 (pods run as 999)."""
    return [
        f"upload {POSTGRES_ENTRYPOINT} /usr/local/bin/docker-entrypoint.sh",
        'chmod 0755 "$1"/usr/local/bin/docker-entrypoint.sh'
        ' && old=$(chroot "$1" id -u postgres) && oldg=$(chroot "$1" id -g postgres)'
        ' && chroot "$1" groupmod --gid 999 postgres && chroot "$1" usermod --uid 999 --gid 999 postgres'
        ' && find "$1" -xdev \\( -uid "$old" -o -gid "$oldg" \\) -exec chown -h 999:999 {} +'
        ' && mkdir -p "$1"/var/lib/postgresql/data && chown 999:999 "$1"/var/lib/postgresql/data',
    ]


def _exporter_hooks(binary: str) -> list[str]:
    """The exporter the local stack runs (tools/exporters, built from the Go module proxy), at the image's path."""
    built = exporters.bin_dir(cache_dir(), _quiet) / binary
    target = "/bin/postgres_exporter" if binary == "postgres_exporter" else f"/{binary}"
    return [f"upload {built} {target}", f'chmod 0755 "$1"{target}']


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Builder:
    """buildah with its storage in the project cache (``<cache>/images``)."""

    cache: Path

    @property
    def root(self) -> Path:
        return self.cache / "images" / "storage"

    def buildah(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = shutil.which("buildah")
        if binary is None:
            raise PrerequisiteError("buildah is needed to build images: run tools/bootstrap.sh (Debian's buildah)")
        argv = [binary, "--root", str(self.root), "--runroot", str(self.cache / "images" / "run"),
                "--storage-driver", "overlay", *args]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise StartupError(f"buildah {' '.join(args[:2])} failed ({result.returncode}):\n"
                               f"{(result.stdout + result.stderr)[-4000:]}")
        return result

    def exists(self, reference: str) -> bool:
        return self.buildah("inspect", "--type", "image", reference, check=False).returncode == 0

    def inspect(self, reference: str) -> tuple[str, int]:
        """(image id, size in bytes: the sum of its uncompressed layers, base included)."""
        info = json.loads(self.buildah("inspect", "--type", "image", reference).stdout)
        layers = json.loads(info["Manifest"])["layers"]
        return str(info["FromImageID"]), sum(int(layer["size"]) for layer in layers)

    def ensure_base(self, name: str, progress: Progress = _quiet) -> str:
        base = BASES[name]
        reference = base.reference(name)
        if self.exists(reference):
            return reference
        for tool in ("mmdebstrap",):
            if shutil.which(tool) is None:
                raise PrerequisiteError(f"{tool} is needed to make base images: run tools/bootstrap.sh")
        progress(f"images: making {reference} from Debian {SUITE} (stands for {base.stands_for})")
        with tempfile.TemporaryDirectory(prefix="coffee-rt-base-") as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            argv = ["mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(base.packages)}",
                    *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")),
                    *(f"--essential-hook={hook}" for hook in base.essential_hooks),
                    *(f"--customize-hook={hook}" for hook in [*_hooks(), *base.hooks()]), SUITE, str(rootfs)]
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise StartupError(f"mmdebstrap failed:\n{result.stderr[-4000:]}")
            container = self.buildah("from", "scratch").stdout.strip()
            try:
                self.buildah("add", container, str(rootfs), "/")
                env_args = [arg for key, value in base.env.items() for arg in ("--env", f"{key}={value}")]
                self.buildah("config", *env_args, "--cmd", "bash", *base.config, container)
                self.buildah("commit", "--quiet", container, reference)
            finally:
                self.buildah("rm", container, check=False)
        return reference

    def ensure_pause(self) -> str:
        """The sandbox image: a static pause binary, alone."""
        digest = hashlib.sha256(PAUSE_SOURCE.read_bytes()).hexdigest()[:12]
        if self.exists(PAUSE) and self.buildah("inspect", "--type", "image", "--format",
                                               '{{index .ImageAnnotations "coffee-rt.source"}}',
                                               PAUSE).stdout.strip() == digest:
            return PAUSE
        with tempfile.TemporaryDirectory(prefix="coffee-rt-pause-") as tmp:
            binary = Path(tmp) / "pause"
            subprocess.run(["cc", "-static", "-Os", "-s", "-o", str(binary), str(PAUSE_SOURCE)], check=True)
            container = self.buildah("from", "scratch").stdout.strip()
            try:
                self.buildah("copy", "--chmod", "0755", container, str(binary), "/pause")
                self.buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535",
                             "--annotation", f"coffee-rt.source={digest}", container)
                self.buildah("commit", "--quiet", container, PAUSE)
            finally:
                self.buildah("rm", container, check=False)
        return PAUSE

    def build(self, name: str, progress: Progress = _quiet) -> Built:
        """Build one image from its Dockerfile as it is now (buildah's layer cache makes a rerun cheap)."""
        image = IMAGES[name]
        args = {arg: self.ensure_base(base, progress) for arg, base in image.bases.items()}
        dockerfile = REPO_ROOT / image.dockerfile
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        reference = image.reference(name)
        started = time.monotonic()
        argv = ["bud", "--layers", "--isolation", "chroot", "--pull=never", "--quiet", "-f", str(dockerfile),
                "-t", reference, *(f"--build-arg={k}={v}" for k, v in args.items())]
        if ignore.is_file():
            argv += ["--ignorefile", str(ignore)]
        self.buildah(*argv, str(REPO_ROOT))
        image_id, size = self.inspect(reference)
        seconds = time.monotonic() - started
        progress(f"images: {reference} {size / 1e6:.0f} MB ({seconds:.0f} s)")
        return Built(reference, image_id, size, seconds)

    def export(self, reference: str, target: Path) -> Path:
        """A docker-archive of ``reference`` (what ``ctr images import`` takes, names included)."""
        target.unlink(missing_ok=True)
        self.buildah("push", "--quiet", reference, f"docker-archive:{target}:{reference}")
        return target


def build_all(names: Sequence[str] | None = None, cache: Path | None = None,
              progress: Progress = _quiet) -> list[Built]:
    builder = Builder(cache or cache_dir())
    builder.ensure_pause()
    return [builder.build(name, progress) for name in (names or list(IMAGES))]


def main() -> int:
    """Build the named images (default: all); import them into the local cluster when it runs."""
    from coffee_rt.local.components.cluster import Cluster
    from coffee_rt.local.settings import LocalSettings

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    built = build_all(sys.argv[1:] or None, progress=say)
    for image in built:
        print(f"{image.reference}\t{image.image_id[:12]}\t{image.size_bytes / 1e6:.0f} MB\t{image.seconds:.0f} s")
    cluster = Cluster(LocalSettings.from_env())
    if cluster.health().ok:
        cluster.import_images([image.reference for image in built], say)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
