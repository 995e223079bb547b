"""The one exception type for a user's mistake (a bad preset, a bad unit, an unknown name).

The CLI turns it into a one-line message and exit code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """A mistake in what the user gave us; the message is one line and names the offending input."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
