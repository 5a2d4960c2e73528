"""A pydantic settings model read once from ``PREFIX_*`` environment variables.

An unknown ``PREFIX_*`` variable is an error (a typo in a manifest stops the pod at start instead
of falling back to a default); named fields are JSON objects or comma-separated lists; every
validation problem names its variable.
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
                      json_fields: Iterable[str] = (), list_fields: Iterable[str] = ()) -> M:
    env = dict(os.environ if env is None else env)
    known = {f"{prefix}{name.upper()}": name for name in model.model_fields}
    values: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(prefix):
            continue
        if key not in known:
            raise SettingsError(f"unknown setting {key}; known: {', '.join(sorted(known))}")
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
    try:
        # Strings from the environment are coerced (lax mode): "2.5" -> 2.5, "P7D" -> 7 days.
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{prefix}{'.'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid {what} settings: {problems}") from None
