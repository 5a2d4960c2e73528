"""A pydantic settings model read once from ``PREFIX_*`` environment variables.

Every settings model of coffee-rt (ingest, dashboard, operator, the local stack) loads here, so
they share one policy: an unknown ``PREFIX_*`` variable is an error (a typo in a manifest stops the
pod at start instead of falling back to a default), named by the message together with the known
ones. Variables of the namespace that other code reads (``also_read``, e.g. ``COFFEE_RT_STATE``)
are let through. Named fields are JSON objects or comma-separated lists; every validation problem
names its variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class SettingsError(ValueError):
    """The environment does not describe a valid configuration; the message says which variable."""


def settings_from_env(model: type[M], prefix: str, what: str, env: Mapping[str, str] | None = None, *,
                      json_fields: Iterable[str] = (), list_fields: Iterable[str] = (),
                      also_read: Iterable[str] = (), overrides: Mapping[str, Any] | None = None) -> M:
    """``model`` from ``PREFIX_<FIELD>`` variables of ``env`` (default: the process's), then
    ``overrides`` (already typed values, e.g. from command-line flags); :class:`SettingsError` names
    the first unknown variable, or every invalid one."""
    env = dict(os.environ if env is None else env)
    known = {f"{prefix}{name.upper()}": name for name in model.model_fields}
    elsewhere = set(also_read)
    values: dict[str, Any] = {}
    for key, value in sorted(env.items()):
        if not key.startswith(prefix) or key in elsewhere:
            continue
        if key not in known:
            raise SettingsError(f"unknown setting {key}; known: {', '.join(sorted(known.keys() | elsewhere))}")
        values[known[key]] = value
    for name in json_fields:
        if isinstance(values.get(name), str):
            try:
                values[name] = json.loads(values[name])
            except ValueError as exc:
                raise SettingsError(f"{prefix}{name.upper()} is not JSON: {exc}") from None
    for name in list_fields:
        if isinstance(values.get(name), str):
            values[name] = [part.strip() for part in values[name].split(",") if part.strip()]
    values.update(overrides or {})
    try:
        # Strings from the environment are coerced (lax mode): "2.5" -> 2.5, "P7D" -> 7 days.
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{prefix}{'.'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid {what} settings: {problems}") from None
