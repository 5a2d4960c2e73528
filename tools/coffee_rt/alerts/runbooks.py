"""The commands the runbooks name, so tests can check each one exists and accepts its arguments:
every shell line of a ```sh block, and inline `kubectl ...`, `coffee-rt ...`, `uv run ...` spans."""

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
