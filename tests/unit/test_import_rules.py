"""Which first-party package may import which: one table, checked on the source with ``ast``.

``ALLOWED`` is the rule (docs/architecture.md, "Packages", draws it). Every ``import`` and
``from ... import`` in every ``.py`` file under the package folders counts, also those inside
functions or under ``if TYPE_CHECKING``; third-party and standard-library modules are ignored.
A new import between our packages needs a new edge here, and the rules below say which edges may
exist at all:

- a library (``libs/``) imports only the libraries listed for it;
- a deployable (services, the job, the operator, infra) imports only libraries and itself, never
  another deployable;
- only ``tools/coffee_rt`` itself and ``benchmarks/`` (and tests, which are not checked) import
  ``coffee_rt``.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

ANY = "*"

LIBS = frozenset(
    {
        "coffee_orders",
        "coffee_live",
        "coffee_jobconfig",
        "coffee_db",
        "coffee_settings",
        "coffee_service",
        "coffee_flink",
        "coffee_ledger",
    }
)
DEPLOYABLES = frozenset(
    {"coffee_ingest", "coffee_dashboard", "coffee_auditor", "coffee_job", "coffee_operator", "infra"}
)
TOOLS = frozenset({"coffee_rt", "benchmarks"})

# The one table: package -> the other first-party packages it may import (itself is always allowed).
ALLOWED: dict[str, frozenset[str]] = {
    # libraries
    "coffee_orders": frozenset(),
    "coffee_live": frozenset(),
    "coffee_jobconfig": frozenset({"coffee_settings"}),
    "coffee_db": frozenset(),
    "coffee_settings": frozenset(),
    "coffee_service": frozenset(),
    "coffee_flink": frozenset({"coffee_jobconfig"}),
    "coffee_ledger": frozenset({"coffee_live", "coffee_orders"}),
    # deployables
    "coffee_ingest": frozenset({"coffee_orders", "coffee_service", "coffee_settings"}),
    "coffee_dashboard": frozenset(
        {"coffee_flink", "coffee_live", "coffee_orders", "coffee_service", "coffee_settings"}
    ),
    "coffee_auditor": frozenset({"coffee_ledger", "coffee_live", "coffee_orders", "coffee_settings"}),
    "coffee_job": frozenset({"coffee_jobconfig", "coffee_live", "coffee_orders"}),
    "coffee_operator": frozenset({"coffee_flink", "coffee_jobconfig", "coffee_settings"}),
    "infra": frozenset({"coffee_db", "coffee_jobconfig", "coffee_orders"}),
    # the CLI + local stack, and the benchmark scripts: anything
    "coffee_rt": frozenset({ANY}),
    "benchmarks": frozenset({ANY}),
}

# Where each package's source lives (relative to the repository root).
FOLDERS: dict[str, str] = {
    **{name: f"libs/{name}" for name in LIBS},
    "coffee_ingest": "services/coffee_ingest",
    "coffee_dashboard": "services/coffee_dashboard",
    "coffee_auditor": "services/coffee_auditor",
    "coffee_job": "jobs/coffee_job",
    "coffee_operator": "operator/coffee_operator",
    "infra": "infra",
    "coffee_rt": "tools/coffee_rt",
    "benchmarks": "benchmarks",
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}, which ALLOWED does not permit"


def imported_modules(source: str, filename: str = "<source>") -> Iterator[tuple[int, str, int]]:
    """Every import in ``source`` as (line, absolute module name or '', relative level)."""
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, node.module or "", node.level
        elif (
            isinstance(node, ast.Call)
            and _call_name(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value, 0


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def source_files(base: Path) -> Iterator[Path]:
    """The ``.py`` files of a package folder, without virtual environments, caches and other hidden folders."""
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(base).parts[:-1]
        if not any(part.startswith(".") or part in {"node_modules", "__pycache__", "site-packages"} for part in parts):
            yield path


def first_party_imports(
    root: Path,
    folders: Mapping[str, str] = FOLDERS,
    known: frozenset[str] | None = None,
) -> Iterator[tuple[str, int, str, str]]:
    """(file, line, importing package, imported package) for every import of one of our packages.

    A relative import that climbs out of its own package yields the dots as the imported package."""
    ours = frozenset(folders) if known is None else known
    for importer, folder in sorted(folders.items()):
        base = root / folder
        for path in source_files(base):
            rel = path.relative_to(root).as_posix()
            depth = len(path.relative_to(base).parts) - 1  # packages between the file and the package root
            for line, module, level in imported_modules(path.read_text(encoding="utf-8"), rel):
                if level:
                    if level - 1 > depth:
                        yield rel, line, importer, "." * level + module
                    continue
                imported = module.split(".")[0]
                if imported in ours and imported != importer:
                    yield rel, line, importer, imported


def check_tree(
    root: Path,
    allowed: Mapping[str, frozenset[str]] = ALLOWED,
    folders: Mapping[str, str] = FOLDERS,
) -> list[Violation]:
    """Every import under ``root`` from one declared package into another that ``allowed`` forbids."""
    violations: list[Violation] = []
    for rel, line, importer, imported in first_party_imports(root, folders, frozenset(allowed)):
        permitted = allowed.get(importer, frozenset())
        if ANY not in permitted and imported not in permitted:
            violations.append(Violation(rel, line, importer, imported))
    return violations


def libraries_needed(root: Path, package: str) -> set[str]:
    """The libraries ``package`` imports, directly or through other libraries."""
    edges: dict[str, set[str]] = {}
    for _, _, importer, imported in first_party_imports(root):
        edges.setdefault(importer, set()).add(imported)
    needed: set[str] = set()
    todo = [package]
    while todo:
        for lib in edges.get(todo.pop(), set()) & LIBS:
            if lib not in needed:
                needed.add(lib)
                todo.append(lib)
    return needed


def test_the_repository_keeps_the_import_rules() -> None:
    violations = check_tree(REPO_ROOT)
    assert not violations, "forbidden imports:\n" + "\n".join(map(str, violations))


def test_the_table_obeys_the_rules() -> None:
    assert set(ALLOWED) == LIBS | DEPLOYABLES | TOOLS == set(FOLDERS)
    for package, targets in ALLOWED.items():
        assert package not in targets, f"{package}: itself is implicit"
        if package in LIBS:
            assert targets <= LIBS, f"library {package} may import only libraries: {sorted(targets - LIBS)}"
        elif package in DEPLOYABLES:
            assert targets <= LIBS, f"deployable {package} may import only libraries: {sorted(targets - LIBS)}"
        else:
            assert package in TOOLS
    # the library edges have no cycle (a library can be built and tested below the ones it uses)
    seen: set[str] = set()

    def visit(lib: str, path: tuple[str, ...]) -> None:
        assert lib not in path, f"library cycle: {' -> '.join((*path, lib))}"
        if lib in seen:
            return
        for target in ALLOWED[lib]:
            visit(target, (*path, lib))
        seen.add(lib)

    for lib in LIBS:
        visit(lib, ())


def test_every_package_folder_is_declared() -> None:
    """A new library or service folder has to get a row in ALLOWED before it can be imported."""
    found = {
        p.parent.name
        for pattern in ("libs/*/__init__.py", "services/*/__init__.py", "jobs/*/__init__.py", "operator/*/__init__.py")
        for p in REPO_ROOT.glob(pattern)
    }
    assert found <= set(ALLOWED), f"undeclared packages: {sorted(found - set(ALLOWED))}"
    for package, folder in FOLDERS.items():
        assert (REPO_ROOT / folder).is_dir(), f"{package}: {folder} is missing"


def test_architecture_doc_draws_the_table() -> None:
    """The Mermaid picture in docs/architecture.md has exactly the edges of ALLOWED (except the 'anything' rows)."""
    doc = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```mermaid\n(.*?)```", doc, re.S)
    assert block, "docs/architecture.md has no mermaid block"
    drawn = set(re.findall(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", block.group(1), re.M))
    declared = {(a, b) for a, targets in ALLOWED.items() if ANY not in targets for b in targets}
    assert drawn == declared, f"only drawn: {sorted(drawn - declared)}; only declared: {sorted(declared - drawn)}"


IMAGES = {
    "coffee_ingest": "services/coffee_ingest/Dockerfile",
    "coffee_dashboard": "services/coffee_dashboard/Dockerfile",
    "coffee_auditor": "services/coffee_auditor/Dockerfile",
    "coffee_job": "jobs/Dockerfile",
    "coffee_operator": "operator/Dockerfile",
}


@pytest.mark.parametrize(("package", "dockerfile"), sorted(IMAGES.items()))
def test_each_image_copies_exactly_the_libraries_its_package_needs(package: str, dockerfile: str) -> None:
    """What the package imports, directly or through a library; no more, so an image stays small."""
    text = (REPO_ROOT / dockerfile).read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY\b.*\blibs/(\w+)", text, re.M))
    needed = libraries_needed(REPO_ROOT, package)
    assert copied == needed, f"{dockerfile} copies {sorted(copied)}, {package} needs {sorted(needed)}"


def _plant(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_the_checker_catches_planted_forbidden_imports(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "libs/coffee_live/__init__.py": "",
            "libs/coffee_live/layout.py": "import json\nfrom coffee_rt.paths import REPO_ROOT\n",
            "libs/coffee_flink/__init__.py": "from coffee_jobconfig import JobConfig\nfrom . import rest\n",
            "services/coffee_ingest/__init__.py": "",
            "services/coffee_ingest/app.py": """\
                from coffee_orders import Order
                from coffee_ingest.settings import Settings

                def handler():
                    from coffee_dashboard import app  # a deployable importing another, inside a function
                    return app
            """,
            "operator/coffee_operator/sub/__init__.py": "from ... import coffee_job\n",
            "infra/components/flink.py": (
                "import importlib\nfrom typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    import coffee_service.serve\n"
                "jobs = importlib.import_module('coffee_job.main')\n"
            ),
            "tools/coffee_rt/cli.py": "import coffee_operator\nimport coffee_ingest.app\n",
            "benchmarks/job_latency.py": "from coffee_rt.local import stack\n",
            "infra/.venv/lib/site-packages/x.py": "import coffee_rt\n",  # an environment, not our source
        },
    )
    allowed = dict(ALLOWED)
    allowed["infra"] = frozenset({"coffee_flink"})
    got = {(v.path, v.line, v.importer, v.imported) for v in check_tree(tmp_path, allowed)}
    assert got == {
        ("libs/coffee_live/layout.py", 2, "coffee_live", "coffee_rt"),
        ("services/coffee_ingest/app.py", 5, "coffee_ingest", "coffee_dashboard"),
        ("operator/coffee_operator/sub/__init__.py", 1, "coffee_operator", "..."),
        ("infra/components/flink.py", 4, "infra", "coffee_service"),
        ("infra/components/flink.py", 5, "infra", "coffee_job"),
    }


@pytest.mark.parametrize(
    ("importer", "source"),
    [
        ("coffee_orders", "from coffee_jobconfig import JobConfig\n"),
        ("coffee_job", "import coffee_rt.local.stack\n"),
        ("coffee_operator", "from coffee_job import main\n"),
        ("coffee_dashboard", "def f():\n    from coffee_db import migrate\n"),
        ("coffee_live", "import coffee_orders.schema\n"),
        ("infra", "from coffee_ingest.app import app\n"),
    ],
)
def test_each_rule_fails_on_its_own(tmp_path: Path, importer: str, source: str) -> None:
    folder = FOLDERS[importer]
    _plant(tmp_path, {f"{folder}/planted.py": source})
    violations = check_tree(tmp_path, folders={importer: folder})
    assert len(violations) == 1, violations
    assert violations[0].importer == importer
