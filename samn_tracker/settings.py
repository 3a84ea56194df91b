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

import argparse
import ast
import dataclasses
import json
import math
import sys
import typing
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence, TypeVar, Union

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
        parts = [f"{op} {bound:g}" for op, bound in
                 ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)) if bound is not None]
        if self.multiple_of is not None:
            parts.append(f"a multiple of {self.multiple_of}")
        return " and ".join(parts)


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
            ge: Optional[float] = None, gt: Optional[float] = None, le: Optional[float] = None,
            lt: Optional[float] = None, multiple_of: Optional[int] = None) -> Any:
    """A dataclass field with its allowed range declared beside the default."""
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={"bounds": Bounds(ge, gt, le, lt, multiple_of)})


@dataclasses.dataclass
class Checked:
    """Base of the typed configs: every field is checked on construction and on ``replace``."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name), hints[f.name], f.metadata.get("bounds"))

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


def add_set_option(parser: argparse.ArgumentParser, dest: str = "overrides", example: str = "memory.interval=10") -> None:
    """``--set KEY=VALUE ...``, the same on every command: several pairs after one ``--set``
    or one ``--set`` per pair, each key once. The pairs are split into one ``--set`` each
    before argparse reads them (``one_pair_per_set``), so an argument after them without
    "=" (``samn track --set a=1 SOURCE``) is still that argument, as it was."""
    parser.add_argument("--set", dest=dest, action=SetPair, default=[], metavar="KEY=VALUE",
                        help=f"change settings, e.g. --set {example} (several after one --set, "
                             "or one --set each)")
    parse = parser.parse_known_args
    parser.parse_known_args = lambda args=None, namespace=None: parse(  # type: ignore[method-assign]
        one_pair_per_set(sys.argv[1:] if args is None else args), namespace)


def one_pair_per_set(argv: Sequence[str]) -> list[str]:
    """``--set a=1 b=2 SOURCE`` -> ``--set a=1 --set b=2 SOURCE``: the items after a
    ``--set`` value that hold "=" and do not start with "-" are settings too."""
    out: list[str] = []
    pairs = False
    for index, item in enumerate(argv):
        if item == "--":
            return out + list(argv[index:])
        if pairs and "=" in item and not item.startswith("-"):
            out += ["--set", item]
            continue
        pairs = item.startswith("--set=") or (bool(out) and out[-1] == "--set")
        out.append(item)
    return out


class SetPair(argparse.Action):
    """One ``--set KEY=VALUE``, appended; a key given twice on the command line is refused,
    since the later value would silently win. Defaults (``SAMN_VOT_CONFIG``) may be set
    again: the command line is meant to win over them."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        items = list(getattr(namespace, self.dest) or [])
        key = _key(value)
        if key and any(_key(item) == key for item in items[len(self.default or []):]):
            raise argparse.ArgumentError(self, f"{key} is set twice; give each key once")
        setattr(namespace, self.dest, items + [value])


def _key(item: str) -> str:
    return item.partition("=")[0].strip()


def comma_names(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """The names of comma lists (``a,b`` ``c``), blanks dropped: each once in the order
    given, and those given more than once, for the command's note (a name listed twice
    would be run, packed or drawn twice)."""
    given = [n.strip() for item in items for n in item.split(",") if n.strip()]
    once = list(dict.fromkeys(given))
    return once, [n for n in once if given.count(n) > 1]


def positive_int(text: str) -> int:
    """argparse type of counts such as ``--batch``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_groups_option(parser: argparse.ArgumentParser) -> None:
    """``--groups G`` beside ``--batch``, the same on every command that steps a lockstep batch."""
    parser.add_argument("--groups", type=positive_int, default=None, metavar="G",
                        help="with --batch: step the batch as G groups in turn, so that one group's "
                             "host work overlaps another's device work (default: 2 on a GPU for a "
                             "--batch of 8 or more, else 1)")


def check_groups(batch: int, groups: Optional[int]) -> None:
    """A bad ``--groups`` for its ``--batch``: an ``InputError`` before any work starts
    (None: chosen by ``tracking_loop.lockstep_groups``)."""
    if groups is not None and groups > batch:
        raise InputError(f"--groups {groups} needs a --batch of at least {groups}")
