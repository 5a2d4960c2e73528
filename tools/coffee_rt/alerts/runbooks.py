"""The commands the runbooks name, so tests can check each one exists and accepts its arguments:
every shell line of a ```sh block, and inline `kubectl ...`, `coffee-rt ...`, `uv run ...` spans; and
a runbook's local-stack mitigation, the steps a drill runs after inducing the failure."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from coffee_rt.alerts.rules import RUNBOOKS_DIR

KINDS = ("kubectl", "coffee-rt", "curl", "uv")


@dataclass(frozen=True)
class Command:
    runbook: str
    kind: str
    argv: list[str]
    line: str


def _command(runbook: str, line: str) -> Command | None:
    line = line.strip().removesuffix("&").strip()
    if not line or line.startswith("#"):
        return None
    if re.fullmatch(r"FLINK=http://127\.0\.0\.1:\d+", line):
        return None
    inner = re.fullmatch(r"JOB=\$\((.*)\)", line)
    if inner:
        line = inner.group(1)
    argv = shlex.split(line)
    kind = argv[0]
    if kind not in KINDS:
        raise ValueError(f"{runbook}: not a command the tests know how to check: {line}")
    return Command(runbook, kind, argv, line)


def commands(directory: Path = RUNBOOKS_DIR) -> list[Command]:
    found = []
    for path in sorted(directory.glob("*.md")):
        text = path.read_text()
        for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
            found += [c for line in block.splitlines() if (c := _command(path.name, line))]
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for span in re.findall(r"`([^`\n]+)`", prose):
            if span.split(" ", 1)[0] in ("kubectl", "coffee-rt") or span.startswith("uv run "):
                if " " in span and not re.search(r"<[^>]+>", span):  # placeholders are for reading
                    command = _command(path.name, span)
                    if command:
                        found.append(command)
    return found


def local_mitigation(runbook: str, directory: Path = RUNBOOKS_DIR) -> list[Command]:
    """The ``coffee-rt`` commands of a runbook's Mitigation section, in the order written (blocks and
    inline spans alike): what someone at the local stack runs, and what the runbook drills run."""
    text = (directory / f"{runbook}.md").read_text()
    found = re.search(r"^## Mitigation\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if found is None:
        raise ValueError(f"{runbook}.md: no Mitigation section")
    steps = []
    for block, span in re.findall(r"```sh\n(.*?)```|`([^`\n]+)`", found.group(1), flags=re.S):
        for line in block.splitlines() if block else [span]:
            if line.strip().startswith("coffee-rt ") and not re.search(r"<[^>]+>", line):
                command = _command(f"{runbook}.md", line)
                if command:
                    steps.append(command)
    return steps
