"""The stride-16 feature grid shared by the network, the tracker and training.

Feature cell j of a crop is centred on crop pixel ``16 j + 7.5``. The Gaussians drawn on
that grid (the DCF's training labels, the spatial map the decoder reads, the synthetic
maps training feeds it) all come from ``gaussians``, so training and tracking agree on
what a target looks like on the grid.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

STRIDE = 16


def pixel_to_cell(u: float) -> float:
    """Crop pixel coordinate -> feature cell coordinate."""
    return (u + 0.5) / STRIDE - 0.5


def cell_to_pixel(c: float) -> float:
    return (c + 0.5) * STRIDE - 0.5


Grid = Union["Tensor", np.ndarray]


def gaussians(xs: Grid, ys: Grid, cx: Union[Grid, float], cy: Union[Grid, float],
              sx: Union[Grid, float], sy: Union[Grid, float]) -> Grid:
    """(B, len(ys), len(xs)) separable Gaussians of peak 1 on the grid ``xs`` x ``ys``.

    Centres and widths are (B, 1) tensors or plain numbers, in the unit of ``xs``/``ys``
    (cells or crop pixels): each caller keeps its own unit, so its numbers are unchanged.
    The grid may be numpy arrays (with (B, 1) arrays or numbers): the host's few labels
    a tracked frame needs, where torch's small operations cost several times numpy's.
    """
    gx = -0.5 * ((xs[None, :] - cx) / sx) ** 2
    gy = -0.5 * ((ys[None, :] - cy) / sy) ** 2
    gx, gy = (np.exp(g) if isinstance(g, np.ndarray) else g.exp() for g in (gx, gy))
    return gy[:, :, None] * gx[:, None, :]
