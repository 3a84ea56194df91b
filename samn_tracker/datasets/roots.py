"""Where the data is: a folder given on the command line, else ``$SAMN_DATA``.

The package never guesses a path next to itself: an installed wheel has no checkout
(and no ``../shared``) beside it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from samn_tracker.errors import InputError

DATA_VARIABLE = "SAMN_DATA"


def data_root(given: Optional[str | Path], option: str) -> Path:
    """``given``, else ``$SAMN_DATA``; InputError naming both when neither gives a folder."""
    value = given or os.environ.get(DATA_VARIABLE)
    if not value:
        raise InputError(f"no data folder: give {option} DIR or set {DATA_VARIABLE}")
    path = Path(value)
    if not path.is_dir():
        raise InputError(f"data folder not found: {path} (from {option if given else '$' + DATA_VARIABLE})")
    return path
