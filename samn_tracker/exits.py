"""How every command ends, the same way whichever command it is: bad input or a failed
download is one line on stderr and exit status 2, a file-system failure one line and
exit status 1, Ctrl-C one line and exit status 130 (128 + SIGINT, what shells report),
whether it comes during start-up or during work; SIGTERM, where a command takes it as Ctrl-C
to save its work (``Terminated``), ends the same way with 143 (128 + SIGTERM, what a batch
scheduler expects of it). Never a traceback: users of vot-toolkit and got10k read the
last line, not a stack. While a command runs, a Python warning is one line too
(``samn track: warning: ...``), not a file:line and source line that the user cannot act
on; the library's own callers keep Python's format. (A bad option is one line by
``command_parser.CommandParser``.)"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
import warnings
from typing import Callable, Iterator

from samn_tracker.errors import DownloadError, InputError

INPUT_ERROR = 2
SYSTEM_ERROR = 1
INTERRUPTED = 130
TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM taken as Ctrl-C is, so that the command saves its work, but told apart in
    its line and exit status."""


def interrupt_status(kind: type[KeyboardInterrupt]) -> int:
    return TERMINATED if issubclass(kind, Terminated) else INTERRUPTED


Main = Callable[..., int]
_PROG = contextvars.ContextVar("prog", default="samn")  # the command ``guarded`` runs now


def guarded(prog: str, on_interrupt: str = "") -> Callable[[Main], Main]:
    """Decorate a command's ``main`` so it ends as this module describes.

    ``on_interrupt`` is what the interrupt line adds (e.g. how to resume); code that knows
    more raises ``KeyboardInterrupt("after 23 frames; ...")`` (``Terminated`` for SIGTERM)
    and that text is used instead.
    """

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def guarded_main(*args, **kwargs) -> int:
            token = _PROG.set(prog)
            try:
                with one_line_warnings(prog):
                    return main(*args, **kwargs)
            except (InputError, DownloadError) as err:
                print(f"{prog}: error: {err}", file=sys.stderr)
                return INPUT_ERROR
            except OSError as err:
                print(f"{prog}: error: {err}", file=sys.stderr)
                return SYSTEM_ERROR
            except KeyboardInterrupt as interrupt:
                detail = " ".join(str(a) for a in interrupt.args) or on_interrupt
                how = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
                print(f"{prog}: {how}{' ' + detail if detail else ''}", file=sys.stderr)
                return interrupt_status(type(interrupt))
            finally:
                _PROG.reset(token)

        return guarded_main

    return decorate


def note(text: str) -> None:
    """``PROG: note: TEXT`` on stderr, PROG the command running (code shared by several
    commands says which one it serves)."""
    print(f"{_PROG.get()}: note: {text}", file=sys.stderr)


@contextlib.contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Python warnings shown as ``PROG: warning: TEXT`` until the block ends."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        print(f"{prog}: warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown
