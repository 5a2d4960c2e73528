"""Reading the project's Prometheus rule files: the alerts, the metric names their expressions use,
and the copies Prometheus loads: each alert's ``runbook_url`` under the configured runbook folder
(and, for end-to-end tests only, a short ``for:``; expressions untouched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from coffee_rt.paths import REPO_ROOT

ALERTS_DIR = REPO_ROOT / "alerts"
RUNBOOKS_DIR = REPO_ROOT / "runbooks"
# The runbook folder the committed rule files link to (and the default of every runbook-URL setting:
# COFFEE_RT_RUNBOOK_BASE_URL locally, the stack config's monitoring.runbookBaseUrl in Kubernetes).
RUNBOOK_BASE = "https://github.com/coffee-rt/coffee-rt/blob/main/runbooks"

# PromQL words that look like metric names: functions, aggregations, keywords.
_PROMQL_WORDS = frozenset("""
abs absent absent_over_time avg avg_over_time bool bottomk by ceil changes clamp clamp_max clamp_min count
count_over_time count_values day_of_month day_of_week day_of_year days_in_month delta deriv exp floor group
group_left group_right histogram_quantile holt_winters hour idelta ignoring increase irate label_join
label_replace last_over_time ln log10 log2 max max_over_time min min_over_time minute month offset on or
and unless predict_linear quantile quantile_over_time rate resets round scalar sgn sort sort_desc sqrt
stddev stddev_over_time stdvar stdvar_over_time sum sum_over_time time timestamp topk vector without year
Inf NaN inf nan
""".split())


@dataclass(frozen=True)
class Rule:
    file: Path
    group: str
    data: dict[str, Any]

    @property
    def alert(self) -> str | None:
        value = self.data.get("alert")
        return str(value) if value is not None else None

    @property
    def record(self) -> str | None:
        value = self.data.get("record")
        return str(value) if value is not None else None

    @property
    def expr(self) -> str:
        return str(self.data["expr"])


def rule_files(directory: Path = ALERTS_DIR) -> list[Path]:
    return sorted(directory.glob("*.rules.yaml"))


def load_rules(files: list[Path] | None = None) -> list[Rule]:
    rules = []
    for path in files if files is not None else rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [Rule(path, group["name"], rule) for rule in group["rules"]]
    return rules


def alerts(files: list[Path] | None = None) -> list[Rule]:
    return [r for r in load_rules(files) if r.alert]


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not recording rules, which contain ':')."""
    text = re.sub(r"#[^\n]*", " ", expr)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)", text):
        word = match.group(1)
        if word in _PROMQL_WORDS or ":" in word:
            continue
        if re.match(r"\s*\(", text[match.end():]) and word not in ("up",):  # a function call
            continue
        names.add(word)
    return names


def check_runbook_base(value: str) -> str:
    """A runbook folder URL: http(s), a host, no query or fragment; returned without a trailing slash."""
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment or any(
            c.isspace() for c in value):
        raise ValueError(f"must be the http(s) URL of the folder holding the runbooks, without query or fragment "
                         f"(e.g. {RUNBOOK_BASE}), got {value!r}")
    return value.rstrip("/")


def runbook_url(url: str, base: str) -> str:
    """``url`` (a committed runbook_url) under ``base`` instead of :data:`RUNBOOK_BASE`."""
    prefix = RUNBOOK_BASE + "/"
    return base + url[len(RUNBOOK_BASE):] if url.startswith(prefix) else url


def copy_rules(files: list[Path], target_dir: Path, runbook_base: str = RUNBOOK_BASE,
               alert_for: str | None = None) -> list[Path]:
    """Copies of ``files`` in ``target_dir`` whose alerts link to their runbooks under ``runbook_base``.

    ``alert_for`` replaces every alert's ``for:``; only for end-to-end tests that cannot wait
    production durations. Every expression, every label and every other annotation stays as committed.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                if alert_for is not None and "for" in rule:
                    rule["for"] = alert_for
                notes = rule.get("annotations", {})
                if "runbook_url" in notes:
                    notes["runbook_url"] = runbook_url(notes["runbook_url"], runbook_base)
        out = target_dir / path.name
        out.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(out)
    return written
