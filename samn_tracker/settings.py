"""Checked settings and the one ``KEY=VALUE`` grammar every command shares.

Like vot-toolkit's validated attributes, each config field declares what it allows
next to its default (``crop_size: int = setting(384, gt=0, multiple_of=16)``); the type
comes from the annotation (``int``, ``float``, ``bool``, ``str``, ``Optional[...]``,
``Literal[...]``, ``list[...]`` or a nested group). A ``Checked`` dataclass checks every
field whenever it is built, ``dataclasses.replace`` included, so a bad value fails
where it is given, with one line naming the key, the value and what is allowed,
instead of mid-track.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import math
import typing
from typing import Any, Iterable, Literal, Mapping, Optional, TypeVar, Union

import numpy as np

from samn_tracker.errors import InputError, SettingError, UnknownSettingError

C = TypeVar("C", bound="Checked")


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Range constraints of one numeric setting; ``None`` = unbounded."""

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None
    multiple_of: Optional[int] = None

    def holds(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt)
                and (self.multiple_of is None or value % self.multiple_of == 0))

    def describe(self) -> str:
        parts = [f"{op} {bound}" if isinstance(bound, int) else f"{op} {bound:g}" for op, bound in  # 2**63 whole
                 ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)) if bound is not None]
        if self.multiple_of is not None:
            parts.append(f"a multiple of {self.multiple_of}")
        return " and ".join(parts)


def setting(default: Any = dataclasses.MISSING, *, ge: Optional[float] = None, gt: Optional[float] = None,
            le: Optional[float] = None, lt: Optional[float] = None, multiple_of: Optional[int] = None) -> Any:
    """A dataclass field with its allowed range declared beside the default."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(ge, gt, le, lt, multiple_of)})


@dataclasses.dataclass
class Checked:
    """Base of the typed configs: every field is checked on construction and on ``replace``.
    A numpy scalar is kept as the Python value it holds: a sweep over ``np.arange`` gives
    ``np.int64``, and the config must still compare, print and save as plain numbers."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.generic):
                value = value.item()
                setattr(self, f.name, value)
            check_value(f.name, value, hints[f.name], f.metadata.get("bounds"))

    def replace(self: C, **changes: Any) -> C:
        """Copy with dotted changes, e.g. ``replace(**{"memory.interval": 10})``; checked."""
        return replace_settings(self, changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def keys(cls) -> list[str]:
        """Every settable dotted key (``memory.interval``, ...)."""
        hints = _hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            group = _group(hints[f.name])
            out += [f"{f.name}.{k}" for k in group.keys()] if group else [f.name]
        return out


def dotted(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config's ``to_dict`` by the dotted keys ``--set`` and ``replace`` take
    (``{"memory": {"interval": 5}}`` -> ``{"memory.interval": 5}``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def replace_settings(obj: C, changes: Mapping[str, Any]) -> C:
    """``obj`` with the dotted ``changes`` applied group by group, each group re-checked."""
    hints = _hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        head, dot, rest = key.partition(".")
        if head not in names:
            raise UnknownSettingError(key, value, type(obj).keys())
        group = _group(hints[head])
        if dot and group is None:
            raise SettingError(key, value, f"no sub-setting: {head!r} is a single value")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        try:
            direct[head] = replace_settings(direct.get(head, getattr(obj, head)), sub)
        except SettingError as err:
            raise err.under(head) from None
    return dataclasses.replace(obj, **direct)


def check_value(key: str, value: Any, annotation: Any, bounds: Optional[Bounds] = None) -> None:
    """Raise ``SettingError`` unless ``value`` has the annotated type and lies in ``bounds``."""
    group = _group(annotation)
    if group is not None:
        if not isinstance(value, group):
            raise SettingError(key, value, f"a group of settings, not a value: set "
                                           f"{', '.join(f'{key}.{k}' for k in group.keys())}")
        return
    allowed = describe(annotation)
    if not _has_type(value, annotation):
        raise SettingError(key, value, allowed)
    if bounds is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not bounds.holds(value):
            raise SettingError(key, value, f"{allowed} {bounds.describe()}")


def describe(annotation: Any) -> str:
    """What values of ``annotation`` look like, for messages."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is Union:
        return " or ".join("None" if a is type(None) else describe(a) for a in args)
    if origin is list:
        return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    return {bool: "True or False", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def _has_type(value: Any, annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is Union:
        return any(_has_type(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, args[0]) for v in value)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))
    return isinstance(value, annotation)


def _group(annotation: Any) -> Optional[type]:
    return annotation if isinstance(annotation, type) and issubclass(annotation, Checked) else None


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


# ------------------------------------------------------------------ the KEY=VALUE grammar
def parse_value(text: str) -> Any:
    """A Python literal (``10``, ``False``, ``None``, ``["a", "b"]``), else a JSON one
    (``true``, ``null``), else the text itself as a string."""
    for parse in (ast.literal_eval, json.loads):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, RecursionError):
            continue
    return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["memory.interval=10", "dcf.augment=False"]`` -> ``{"memory.interval": 10, ...}``;
    a later item wins over an earlier one with the same key."""
    settings: dict[str, Any] = {}
    for item in items:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise InputError(f"setting {item!r} must look like KEY=VALUE")
        settings[key] = parse_value(text)
    return settings
