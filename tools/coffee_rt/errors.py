"""Errors the CLI turns into a clear message and a meaningful exit code."""

from __future__ import annotations


class CoffeeRtError(Exception):
    """A failure the user can act on; the message says what and where to look."""

    exit_code = 1


class UsageError(CoffeeRtError):
    """Bad input on the command line (unknown component, bad option)."""

    exit_code = 2


class PrerequisiteError(CoffeeRtError):
    """Something the machine lacks and we could not install (Java, a Debian package)."""

    exit_code = 3


class StartupError(CoffeeRtError):
    """A component did not come up; names the component and its log."""

    exit_code = 4
