"""The parser of every command (``CommandParser``), so that all of them read and answer
alike: ``--help`` with descriptions wrapped to the terminal, examples kept line by line
and each option's default after its help; a complaint about an option as one line,
``PROG: error: MESSAGE``, exit status 2, without the usage block that ``--help`` shows
(users of vot-toolkit and got10k read the last line); and the shared options ``--set
KEY=VALUE ...`` and ``--groups G``."""
from __future__ import annotations

import argparse
import copy
import sys
from typing import Iterable, NoReturn, Optional, Sequence

from samn_tracker.errors import InputError
from samn_tracker.exits import INPUT_ERROR


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with the conventions above; its sub-command parsers are
    ``CommandParser`` too (argparse makes them of the parent's class)."""

    def __init__(self, *args, formatter_class: type = None, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class or ExamplesFormat, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(INPUT_ERROR, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if any(isinstance(action, SetPair) for action in self._actions):
            args = one_pair_per_set(args)
        return super().parse_known_args(args, namespace)

    def add_set_option(self, dest: str = "overrides", example: str = "memory.interval=10") -> None:
        """``--set KEY=VALUE ...``, the same on every command: several pairs after one
        ``--set`` or one ``--set`` per pair, each key once. The pairs are split into one
        ``--set`` each before argparse reads them (``one_pair_per_set``), so an argument
        after them without "=" (``samn track --set a=1 SOURCE``) is still that argument."""
        self.add_argument("--set", dest=dest, action=SetPair, default=[], metavar="KEY=VALUE",
                          help=f"change settings, e.g. --set {example} (several after one --set, "
                               "or one --set each)")

    def add_sequences_option(self, help: str) -> None:
        """``--sequences``, the same grammar on every command: names after one option,
        comma-separated, or both (``--sequences a b,c``)."""
        self.add_argument("--sequences", nargs="+", action="extend", metavar="NAME",
                          help=help + "; names may also be comma-separated")

    def add_groups_option(self) -> None:
        """``--groups G`` beside ``--batch``, the same on every command that steps a lockstep batch."""
        self.add_argument("--groups", type=positive_int, default=None, metavar="G",
                          help="with --batch: step the batch as G groups in turn, so that one group's "
                               "host work overlaps another's device work (default: 2 on a GPU for a "
                               "--batch of 8 or more, else 1)")


class ExamplesFormat(argparse.ArgumentDefaultsHelpFormatter):
    """Text written on one line (a description) is wrapped; text written with line breaks
    (an epilog of examples) is kept as written; the double backquotes of a docstring used
    as a description show as one. Each option shows its default, one without
    help too (argparse shows a default only inside help), unless the default says nothing
    (``says_something``) or the help already names it ("default: results/davis")."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        text = text.replace("``", "`")
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and says_something(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not says_something(action) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def says_something(action: argparse.Action) -> bool:
    """Whether a default is worth showing: not None, a flag's False, an empty list or --help's."""
    default = action.default
    return not (default is None or default is False or default == [] or default == argparse.SUPPRESS)


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


def positive_int(text: str) -> int:
    """argparse type of counts such as ``--batch``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed_number(text: str) -> int:
    """argparse type of ``--seed``: what numpy's generators take (0 .. 2**64 - 1), checked
    before a command writes its record or lock, not when the tracker is built."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2 ** 64:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**64 - 1, got {value}")
    return value


def check_groups(batch: int, groups: Optional[int]) -> None:
    """A bad ``--groups`` for its ``--batch``: an ``InputError`` before any work starts
    (None: chosen by ``tracking_loop.lockstep_groups``)."""
    if groups is not None and groups > batch:
        raise InputError(f"--groups {groups} needs a --batch of at least {groups}")


def comma_names(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """The names of comma lists (``a,b`` ``c``), blanks dropped: each once in the order
    given, and those given more than once, for the command's note (a name listed twice
    would be run, packed or drawn twice)."""
    given = [n.strip() for item in items for n in item.split(",") if n.strip()]
    once = list(dict.fromkeys(given))
    return once, [n for n in once if given.count(n) > 1]


# The --threads help of every command that tracks (devices.cpu_threads says what it does).
THREADS_HELP = ("CPU threads of torch and OpenCV on a CPU (default: 1 for lite, unless OMP_NUM_THREADS is set: "
                "more threads wait on each other whenever another program takes a core, 1 fps instead of 30 "
                "on a busy 2-core machine; the library's own for paper)")
