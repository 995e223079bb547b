"""The one exception type for a user's mistake (a bad preset, a bad unit, an unknown name).

The CLI turns it into a one-line message and exit code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


class UserError(ValueError):
    """A mistake in what the user gave us; the message is one line and names the offending input.

    `key`, when given, is that input's name as the raiser knows it (a core field such as `edge_bits`) and the
    message reads `key: detail`. A boundary that knows the user's name for it (a YAML key, a flag) re-raises
    `renamed(...)`: the key is replaced as a field, never by rewriting the message's text.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.detail = message

    def renamed(self, names: Mapping[str, str], source: str = "") -> UserError:
        """This error with its key as the user wrote it (`names[key]`, kept when not there), after `source: `."""
        key = names.get(self.key, self.key) if self.key else None
        error = UserError(self.detail, key)
        return UserError(f"{source}: {error}") if source else error


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
