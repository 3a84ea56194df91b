"""Errors raised on bad user input; messages name the offending file or value.

Only user mistakes raise ``InputError``; a broken internal contract (wrong tensor shape
between two of our own modules) raises ``ValueError``, so a bug never reads like a
typo in a command.
"""
from __future__ import annotations

from typing import Any, Sequence


class InputError(ValueError):
    """A frame, region, file or option given by the user cannot be used."""


class DownloadError(RuntimeError):
    """A weight file could not be downloaded (no network, server error); the message says
    where to put the file by hand."""


class SettingError(InputError):
    """A configuration setting (``KEY=VALUE``) that does not exist or whose value is not allowed.

    ``key`` is the dotted name, ``value`` what was given, ``allowed`` what would be
    accepted; the message is one line naming all three.
    """

    def __init__(self, key: str, value: Any, allowed: str, source: str = ""):
        self.key, self.value, self.allowed, self.source = key, value, allowed, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}setting {key}={value!r} is not allowed: expected {allowed}")

    def under(self, group: str) -> "SettingError":
        """The same error seen from the enclosing group (``interval`` -> ``memory.interval``)."""
        return type(self)(f"{group}.{self.key}", self.value, self.allowed, self.source)

    def within(self, source: str) -> "SettingError":
        """The same error, naming the file it came from."""
        return type(self)(self.key, self.value, self.allowed, source)


class UnknownSettingError(SettingError):
    """A ``KEY`` that names no setting; ``known`` lists the keys that exist."""

    def __init__(self, key: str, value: Any, known: Sequence[str], source: str = ""):
        self.known = list(known)
        super().__init__(key, value, "KEY=VALUE with KEY one of " + ", ".join(self.known), source)
        where = f"{source}: " if source else ""
        self.args = (f"{where}unknown setting {key!r} (in {key}={value!r}): expected {self.allowed}",)

    def under(self, group: str) -> "UnknownSettingError":
        return type(self)(f"{group}.{self.key}", self.value, [f"{group}.{k}" for k in self.known],
                          self.source)

    def within(self, source: str) -> "UnknownSettingError":
        return type(self)(self.key, self.value, self.known, source)
