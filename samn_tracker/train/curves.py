"""Training curves (by default loss and frame-2 IoU per step) as a PNG, from ``log.csv``."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from samn_tracker.atomic import replacing


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over ``window`` steps (shorter at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


# (column of log.csv, axis label, log scale): what ``samn train`` logs
TRAIN_PANELS = (("loss", "loss (BCE + soft IoU)", True),  # the first steps' loss is ten times the rest
                ("iou", "IoU of frame 2 (training batches)", False))


def training_figure(log_csv: str | Path, title: str = "",
                    panels: Sequence[tuple[str, str, bool]] = TRAIN_PANELS):
    """Each panel's column per step, raw and smoothed; one figure, panels side by side,
    whole steps on the x axis however short the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    log = pd.read_csv(log_csv).drop_duplicates("step", keep="last").sort_values("step")
    window = max(1, len(log) // 50)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    steps = log["step"].to_numpy()
    marker = "o" if len(log) < 20 else None  # a line of one point draws nothing
    for ax, (column, label, log_scale) in zip(axes[0], panels):
        values = log[column].to_numpy(dtype=float)
        ax.plot(steps, values, color="0.8", linewidth=0.5)
        ax.plot(steps, smooth(values, window), color="C0", linewidth=1.5, marker=marker, markersize=3,
                label=f"mean of {window} step{'s' if window > 1 else ''}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(steps) and steps.max() - steps.min() < 2:  # else a step's own width: ticks at 0.95, 1.05
            ax.set_xlim(steps.min() - 1, steps.max() + 1)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        if log_scale:  # ticks at 1, 2 and 5 of each decade, written as plain numbers (not 6x10^0)
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_training_log(log_csv: str | Path, png: str | Path, title: str = "",
                      panels: Sequence[tuple[str, str, bool]] = TRAIN_PANELS) -> Path:
    """``training_figure`` as a PNG, replaced atomically."""
    import matplotlib.pyplot as plt

    fig = training_figure(log_csv, title, panels)
    png = Path(png)
    with replacing(png) as tmp:
        fig.savefig(tmp, dpi=120, format=png.suffix.lstrip(".") or "png")
    plt.close(fig)
    return png
