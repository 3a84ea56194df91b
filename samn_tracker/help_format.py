"""How ``--help`` looks in every command: descriptions wrapped to the terminal, examples kept
line by line, and each option's default after its help."""
from __future__ import annotations

import argparse
import copy


class ExamplesFormat(argparse.ArgumentDefaultsHelpFormatter):
    """Text written on one line (a description) is wrapped; text written with line breaks
    (an epilog of examples) is kept as written. Each option shows its default, one without
    help too (argparse shows a default only inside help), unless the default says nothing
    (``says_something``) or the help already names it ("default: results/davis")."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
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
