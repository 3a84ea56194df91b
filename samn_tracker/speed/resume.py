"""What an interrupted ``samn bench`` keeps: each tracker's entry as it finishes, in
``<out>/bench.partial.json``, and the same command on the same code picks them up again.

A bench over DAVIS val with ``--repeat 3`` runs for the better part of an hour on a CPU;
Ctrl-C in the last tracker should not cost the others. A kept entry is reused only by a run
with the same settings on the same data and code (``meta.code``, uncommitted edits
included), since a timing or an accuracy of other code is not this run's; options that only
change the report (``--against``, ``--out``, ...) may differ. ``bench.json`` itself is still
written once, complete, and the partial file is removed then.
"""
from __future__ import annotations

import json
from pathlib import Path

from samn_tracker.atomic import write_text

PARTIAL = "bench.partial.json"


class KeptTrackers:
    """The finished trackers of an unfinished run in ``out``."""

    def __init__(self, out: Path, settings: dict, code: dict):
        self.path = out / PARTIAL
        self.key = {"settings": settings, "code": code}
        self.entries: dict[str, dict] = {}
        self.dates: dict[str, str] = {}
        self.ignored = None  # why an earlier partial file was not used
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        try:
            kept = json.loads(self.path.read_text())
            key, entries, dates = kept["key"], kept["trackers"], kept["dates"]
        except (OSError, ValueError, KeyError, TypeError):
            self.ignored = "it is not readable"
            return
        if key != self.key:
            differ = [what for what in ("settings", "code") if key.get(what) != self.key[what]]
            self.ignored = f"other {' and '.join(differ)} made it"
            return
        self.entries, self.dates = entries, dates

    def keep(self, name: str, entry: dict, date: str) -> None:
        """A tracker finished: write every finished one so far."""
        self.entries[name] = entry
        self.dates[name] = date
        write_text(self.path, json.dumps({"key": self.key, "trackers": self.entries, "dates": self.dates}))

    def interrupted(self, during: str) -> KeyboardInterrupt:
        """The interrupt to raise: what was kept and how to go on."""
        if not self.entries:
            return KeyboardInterrupt(f"during {during}; nothing finished, nothing written")
        return KeyboardInterrupt(f"during {during}; the finished trackers ({', '.join(self.entries)}) are "
                                 f"kept in {self.path}: run the same command to resume")


def forget_kept(out: Path) -> None:
    """The whole result is written: nothing left to resume."""
    (out / PARTIAL).unlink(missing_ok=True)
