"""Getting what the local stack lacks: Debian packages, Java, Maven-resolved jars.

Everything lands in the project's cache folder, keyed by the pom's content, so a second run
resolves nothing and a version bump in a pom resolves again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from coffee_rt.errors import PrerequisiteError
from coffee_rt.paths import REPO_ROOT, TOOLS_DIR

Progress = Callable[[str], None]

_apt_updated = False


def _no_progress(_: str) -> None:
    pass


def require_java(min_major: int = 17) -> str:
    """Path of a ``java`` of at least ``min_major``; a clear error when there is none."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise PrerequisiteError(
            f"Java {min_major}+ is required (Kafka and Flink run on it) but no `java` was found on PATH "
            "or in JAVA_HOME. Install it with: apt-get install -y openjdk-17-jre-headless"
        )
    version, major = _java_version(java)
    if major < min_major:
        raise PrerequisiteError(f"Java {min_major}+ is required, found {version} at {java}")
    return java


@cache
def _java_version(java: str) -> tuple[str, int]:
    """``java -version`` of one binary, asked once per process: a JVM start costs about 100 ms of CPU,
    and the supervisor and every health wait ask for a server's argv (its java) each half second."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    try:
        version = out.split('"')[1]
        return version, int(version.split(".")[0]) if not version.startswith("1.") else int(version.split(".")[1])
    except (IndexError, ValueError):
        raise PrerequisiteError(f"could not read the Java version from `{java} -version`: {out.strip()}") from None


@cache
def jvm_accepts(java: str, option: str) -> bool:
    """Whether ``java`` starts with ``option``: not every Java 17 build has every collector
    (Shenandoah is in OpenJDK's, including Debian's, but not in Oracle's)."""
    return subprocess.run([java, option, "-version"], capture_output=True, check=False).returncode == 0


def apt_install(packages: list[str], progress: Progress = _no_progress) -> None:
    """Install Debian packages (as root, non-interactive). Not root: say which command to run."""
    global _apt_updated
    if os.geteuid() != 0:
        raise PrerequisiteError(
            f"missing Debian packages {', '.join(packages)}; run: sudo apt-get install -y {' '.join(packages)}"
        )
    if shutil.which("apt-get") is None:
        raise PrerequisiteError(f"missing {', '.join(packages)} and no apt-get to install them with")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        progress("apt-get update")
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, capture_output=True)
        _apt_updated = True
    progress(f"apt-get install {' '.join(packages)}")
    # Don't let the packages start system-wide services: we run our own instances.
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        result = subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
            env=env, capture_output=True, text=True, check=False,
        )
    finally:
        if created:
            policy.unlink(missing_ok=True)
    if result.returncode != 0:
        raise PrerequisiteError(
            f"apt-get install {' '.join(packages)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def ensure_binary(path_or_name: str, package: str, progress: Progress = _no_progress) -> str:
    """A binary by absolute path or PATH name, installing its Debian package when missing."""
    def find() -> str | None:
        if path_or_name.startswith("/"):
            return path_or_name if Path(path_or_name).exists() else None
        return shutil.which(path_or_name)

    found = find()
    if found is None:
        apt_install([package], progress)
        found = find()
    if found is None:
        raise PrerequisiteError(f"{path_or_name} is still missing after installing {package}")
    return found


def maven_jar_dir(pom_name: str, cache: Path) -> Path:
    """Where the jars of ``tools/maven/<pom_name>/pom.xml`` are (or will be) resolved to."""
    pom = TOOLS_DIR / "maven" / pom_name / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    return cache / "jars" / f"{pom_name}-{digest}"


def maven_jars(pom_name: str, cache: Path, progress: Progress = _no_progress) -> Path:
    """Resolve the dependencies of ``tools/maven/<pom_name>/pom.xml`` into a folder of jars."""
    pom = TOOLS_DIR / "maven" / pom_name / "pom.xml"
    target = maven_jar_dir(pom_name, cache)
    digest = target.name.rsplit("-", 1)[1]
    if (target / ".complete").exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        ensure_binary("mvn", "maven", progress)
        mvn = shutil.which("mvn") or "mvn"
    progress(f"resolving {pom_name} jars from Maven Central (first run only)")
    tmp = target.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run(
        [mvn, "-B", "-q", "-f", str(pom), f"-Dmaven.repo.local={cache / 'm2'}",
         "dependency:copy-dependencies", f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise PrerequisiteError(f"mvn could not resolve {pom}:\n{(result.stdout + result.stderr)[-3000:]}")
    (tmp / ".complete").write_text(digest)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


JOB_FUNCTIONS_SRC = REPO_ROOT / "jobs" / "functions" / "src"
JOB_FUNCTIONS_JAR = "coffee-rt-job-functions.jar"


def job_functions_jar(cache: Path, classpath: Sequence[Path], progress: Progress = _no_progress) -> Path:
    """Compile the job's Java code (jobs/functions: its SQL functions, its Postgres sink factory and
    the JDBC driver's password plugin) against the jars in the ``classpath`` folders (Flink's lib/
    and the connectors), once per source.

    javac and jar only: no Maven plugins to fetch. The other files under the source folder
    (``META-INF/services``: the sink factory's registration) go into the jar as they are. The jar
    goes into Flink's lib/ next to the connectors, so every job on the cluster can use them.
    """
    files = sorted(path for path in JOB_FUNCTIONS_SRC.rglob("*") if path.is_file())
    sources = [path for path in files if path.suffix == ".java"]
    resources = [path for path in files if path.suffix != ".java"]
    digest = hashlib.sha256()
    for source in files:
        digest.update(source.relative_to(JOB_FUNCTIONS_SRC).as_posix().encode())
        digest.update(source.read_bytes())
    for folder in classpath:
        for jar in sorted(folder.glob("*.jar")):
            digest.update(jar.name.encode())
    target = cache / "jars" / f"job-functions-{digest.hexdigest()[:12]}" / JOB_FUNCTIONS_JAR
    if target.exists():
        return target
    require_java(17)
    javac = shutil.which("javac")
    if javac is None:
        ensure_binary("javac", "openjdk-17-jdk-headless", progress)
        javac = shutil.which("javac") or "javac"
    progress("compiling the job's SQL functions (jobs/functions)")
    build = target.parent.with_suffix(".partial")
    shutil.rmtree(build, ignore_errors=True)
    classes = build / "classes"
    classes.mkdir(parents=True)
    for resource in resources:
        copied = classes / resource.relative_to(JOB_FUNCTIONS_SRC)
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resource, copied)
    for command in (
        [javac, "--release", "17", "-nowarn", "-cp", ":".join(f"{folder}/*" for folder in classpath),
         "-d", str(classes), *map(str, sources)],
        [str(Path(javac).resolve().parent / "jar"), "--create", "--file", str(build / JOB_FUNCTIONS_JAR),
         "-C", str(classes), "."],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PrerequisiteError(f"building {JOB_FUNCTIONS_JAR} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    shutil.rmtree(classes)
    shutil.rmtree(target.parent, ignore_errors=True)
    build.rename(target.parent)
    return target
