"""How ``--help`` looks in every command: descriptions wrapped to the terminal, examples kept
line by line, and (where asked) each option's default after its help."""
from __future__ import annotations

import argparse


class ExamplesFormat(argparse.HelpFormatter):
    """Text written on one line (a description) is wrapped; text written with line breaks
    (an epilog of examples) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class DefaultsFormat(ExamplesFormat, argparse.ArgumentDefaultsHelpFormatter):
    """``ExamplesFormat`` plus each option's default, unless it is None, a flag's False or an
    empty list, which say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default == []:
            return action.help or ""
        return super()._get_help_string(action)
