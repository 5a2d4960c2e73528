"""The PolicyPack wiring, importable so the tests can call each policy's validate function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import EnforcementLevel, Policy, PolicyPack, ReportViolation, ResourceValidationPolicy

from infra.policy.rules import RULES, Manifest, Violation

PACK_NAME = "coffee-rt-kubernetes"


def validator(rule: Callable[[Manifest], list[Violation]]) -> Callable[[Any, ReportViolation], None]:
    def validate(args: Any, report_violation: ReportViolation) -> None:
        if not str(args.resource_type).startswith("kubernetes:"):
            return
        for violation in rule(dict(args.props)):
            report_violation(str(violation), None)

    return validate


def policies() -> list[Policy]:
    return [ResourceValidationPolicy(name=name, description=(rule.__doc__ or name).strip().splitlines()[0],
                                     validate=validator(rule), enforcement_level=EnforcementLevel.MANDATORY)
            for name, rule in RULES.items()]


def build_pack() -> PolicyPack:
    return PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
