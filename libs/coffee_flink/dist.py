"""The Flink distribution shipped inside the ``apache-flink`` wheel (only where PyFlink is installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class FlinkNotInstalled(RuntimeError):
    """The apache-flink package (or its flink-python jar) is missing from this environment."""


def flink_dist() -> Path:
    """The Flink distribution inside the installed apache-flink wheel."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise FlinkNotInstalled("the apache-flink Python package is not installed (uv sync installs it)")
    return Path(spec.origin).parent


def flink_python_jar() -> Path:
    """The jar whose PythonDriver runs PyFlink programs submitted over REST."""
    jars = sorted((flink_dist() / "opt").glob("flink-python-*.jar"))
    if not jars:
        raise FlinkNotInstalled(f"no flink-python jar in {flink_dist() / 'opt'}")
    return jars[-1]
