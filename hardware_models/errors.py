"""The one exception type for a user's mistake (a bad preset, a bad unit, an unknown name).

The CLI turns it into a one-line message and exit code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """A mistake in what the user gave us; the message is one line and names the offending input."""


def check_keys(config: Iterable[str], allowed: Iterable[str], source: str, required: Iterable[str] = (),
               kind: str = "preset", section: str = "") -> None:
    """A UserError for the first key of `config` not in `allowed` (with a close-name hint) or the first
    `required` key missing; the message names `source` (the file) and the key path (`section.key`)."""
    allowed = list(allowed)
    keys = list(config)
    path = f"{section}." if section else ""
    for key in keys:
        if key not in allowed:
            raise UserError(f"{source}: {path}{key}: unknown key{suggest(str(key), allowed)}; expected one of "
                            f"{', '.join(allowed)}")
    required = list(required)
    for key in required:
        if key not in keys:
            raise UserError(f"{source}: {path}{key}: missing (a {kind} needs {', '.join(required)})")


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
