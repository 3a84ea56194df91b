"""Which trackers of one table were scored on other sequences than the rest: a table
that sets them side by side must say so, or a tracker scored on the easy half wins."""
from __future__ import annotations

from typing import Collection, Mapping


def counts_if_differing(scored: Mapping[str, Collection[str]]) -> dict[str, int]:
    """Tracker -> number of sequences scored, when the trackers did not all score the same
    ones; else empty."""
    if len({frozenset(names) for names in scored.values()}) < 2:
        return {}
    return {tracker: len(set(names)) for tracker, names in scored.items()}


def listed_counts(counts: Mapping[str, int]) -> str:
    """``{"samn": 30, "csrt": 2}`` -> ``"samn (30), csrt (2)"`` for a warning line."""
    return ", ".join(f"{tracker} ({n})" for tracker, n in counts.items())
