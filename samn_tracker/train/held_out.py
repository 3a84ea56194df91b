"""Named sets of sequences that training must never see, because they are scored.

A training config lists set names in ``held_out``; every source refuses a sequence,
frame or texture whose sequence name is in one of them, so the shipped recipe keeps
its evaluation set clean by itself rather than by care.
"""
from __future__ import annotations

from typing import Iterable

from samn_tracker.errors import InputError

DAVIS2016_VAL = frozenset("""
blackswan bmx-trees breakdance camel car-roundabout car-shadow cows dance-twirl dog
drift-chicane drift-straight goat horsejump-high kite-surf libby motocross-jump
paragliding-launch parkour scooter-black soapbox
""".split())

HELD_OUT_SETS = {"davis2016-val": DAVIS2016_VAL}


def held_out_names(set_names: Iterable[str]) -> frozenset[str]:
    """Union of the named sets; an unknown name is an error, not an empty set."""
    names: set[str] = set()
    for set_name in set_names:
        if set_name not in HELD_OUT_SETS:
            raise InputError(f"unknown held-out set {set_name!r}; known: {sorted(HELD_OUT_SETS)}")
        names |= HELD_OUT_SETS[set_name]
    return frozenset(names)


def refuse_held_out(sequences: Iterable[str], held_out: frozenset[str], where: str) -> None:
    """Stop before training on any sequence of a held-out set."""
    hits = sorted(set(sequences) & held_out)
    if hits:
        raise InputError(f"{where}: {', '.join(hits)} belong to a held-out evaluation set "
                         "and cannot be used for training")
