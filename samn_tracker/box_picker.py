"""`samn track --select`: the target's box drawn with the mouse on the first frame, for
whoever has a video and no pixel coordinates of the object in it.

A matplotlib window (the package's plotting library; OpenCV's headless build, which this
project installs, has no windows): drag a rectangle, adjust it by its handles, press Enter
to track it, Escape to give up. Closing the window keeps the box drawn, if any.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from samn_tracker.errors import InputError

HELP = "drag a box round the target, adjust it by its handles; Enter: track it, Escape: cancel"


class BoxPicker:
    """The first frame on ``figure`` with a rectangle selector. ``box`` is the rectangle
    drawn (x, y, w, h in pixels), None until one is; ``ended``: Enter (with a box drawn),
    Escape or closing the window ended the choice; ``cancelled``: Escape did."""

    def __init__(self, figure, image: np.ndarray, title: str):
        from matplotlib.widgets import RectangleSelector

        self.figure = figure
        self.shape = image.shape[:2]
        self.ax = figure.add_axes((0, 0, 1, 0.94))
        self.ax.imshow(image)
        self.ax.set_axis_off()
        figure.suptitle(f"{title}\n{HELP}", fontsize=9)
        self.selector = RectangleSelector(self.ax, lambda press, release: None, useblit=False,
                                          interactive=True, button=[1], minspanx=2, minspany=2,
                                          spancoords="pixels", ignore_event_outside=True)
        self.ended = self.cancelled = False
        figure.canvas.mpl_connect("key_press_event", self._key)
        figure.canvas.mpl_connect("close_event", self._closed)

    @property
    def box(self) -> Optional[np.ndarray]:
        """The rectangle in frame pixels, clipped to the frame; None while none is drawn.
        ``imshow`` draws pixel i over [i - 0.5, i + 0.5] and a box's pixel i covers [i, i + 1],
        so the axes' coordinates move by half a pixel."""
        x0, x1, y0, y1 = self.selector.extents
        height, width = self.shape
        x0, x1 = np.clip([x0 + 0.5, x1 + 0.5], 0, width)
        y0, y1 = np.clip([y0 + 0.5, y1 + 0.5], 0, height)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return np.round([x0, y0, x1 - x0, y1 - y0], 1)

    @property
    def accepted(self) -> bool:
        """Whether the box drawn is the choice: the choice ended, not by Escape, with a box."""
        return self.ended and not self.cancelled and self.box is not None

    def _key(self, event) -> None:
        if event.key == "escape":
            self.cancelled = True
            self._close()
        elif event.key == "enter" and self.box is not None:
            self._close()

    def _closed(self, event) -> None:
        self.ended = True

    def _close(self) -> None:
        """End the choice; a window's own close also sends ``close_event``, a file canvas not."""
        import matplotlib.pyplot as plt

        self.ended = True
        plt.close(self.figure)


def window_backend() -> tuple[str, bool]:
    """matplotlib's backend here, and whether it opens windows: without a display, or a GUI
    toolkit such as tkinter, matplotlib falls back to one that only writes files."""
    import matplotlib
    from matplotlib.backends import BackendFilter, backend_registry

    backend = matplotlib.get_backend()
    return backend, backend.lower() not in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)


def pick_box(image: np.ndarray, title: str) -> np.ndarray:
    """The box drawn on ``image`` (RGB) in a window; waits for the user. No window to draw
    in, or no box drawn, is one line of bad input."""
    import matplotlib.pyplot as plt

    backend, opens_windows = window_backend()
    if not opens_windows:
        raise InputError(f"--select draws the box in a window, and matplotlib has none here (backend "
                         f"{backend!r}: no display, or no GUI toolkit such as tkinter; MPLBACKEND picks "
                         "one); give --box x,y,w,h instead")
    height, width = image.shape[:2]
    figure = plt.figure(figsize=(min(12.0, width / 80), min(8.0, height / 80) + 0.6))
    picker = BoxPicker(figure, image, title)
    plt.show(block=True)  # also where interactive mode is on (IPython), which would not wait
    if not picker.accepted:
        raise InputError("--select: no box was chosen (Escape, or the window closed with none drawn)")
    return picker.box
