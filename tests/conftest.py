"""Shared fixtures: the real DAVIS 2016 sequences in ../shared/data and small tracker configs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# One intra-op thread: the suite's cost is many small ops, where a second thread
# mostly spins, and on a shared 2-core machine it collapses under contention.
torch.set_num_threads(1)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"

# First-frame tuning for tests that start from a mask or a box with ``lite`` but are not about
# tuning: two steps give each target decoder weights of its own, as the shipped 40 do, in a
# twentieth of the seconds those take on one thread (test_builtin_model and
# test_decoder_tuning test the tuning).
SHORT_TUNING = {"tuning.steps": 2}
SHORT_TUNING_ARGS = ["--set", *(f"{key}={value}" for key, value in SHORT_TUNING.items())]


@pytest.fixture(scope="session")
def davis_root() -> Path:
    if not (DATA / "JPEGImages" / "480p").is_dir():
        pytest.skip(f"real test data not found at {DATA} (see ../shared/data/README.md)")
    return DATA


def pixel_mean(mask: np.ndarray) -> tuple[float, float] | None:
    """Mean position ``(x, y)`` of a mask's pixels, None if empty: a centroid by its
    definition, the oracle of ``MaskCounts.centroid``."""
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else None


def read_boxes(root: Path, name: str) -> np.ndarray:
    return np.loadtxt(root / "boxes" / f"{name}.txt", delimiter=",")
