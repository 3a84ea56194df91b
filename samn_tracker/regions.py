"""Boxes, polygons and masks: conversions, overlaps and the VOT text formats.

Conventions (shared by the whole package):

* a box is ``x, y, w, h`` (floats, 0-based left/top pixel); when integer it covers
  pixel columns ``x .. x+w-1`` and rows ``y .. y+h-1``;
* a polygon is an ``(N, 2)`` float array of ``(x, y)`` vertices. Vertices are
  inclusive pixel coordinates, as in the VOT toolkit: they are rounded to integers and
  the filled outline (boundary included) is the region, so the square
  ``(0,0)-(10,10)`` covers 11 x 11 pixels;
* a mask is a bool ``H x W`` array in full-frame coordinates.

Box <-> polygon conversions follow the VOT toolkit (``x .. x+w`` corners, and
``max - min`` extents back), so they are exact inverses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from samn_tracker.errors import InputError

Region = np.ndarray
"""A box (4,), a polygon (N, 2) or a bool mask (H, W)."""

_NUMBER_SEPARATOR = re.compile(r"[,\s]+")


def _as_polygon(poly) -> np.ndarray:
    values = np.asarray(poly, dtype=np.float64)
    if values.size < 6 or values.size % 2:  # an odd count failed in reshape, naming no polygon
        raise InputError(f"a polygon needs at least 3 vertices (x, y), got {np.asarray(poly).tolist()}")
    return values.reshape(-1, 2)


def box_to_polygon(box) -> np.ndarray:
    """Corners of the box, clockwise from the top-left (VOT's rectangle -> polygon)."""
    x, y, w, h = np.asarray(box, dtype=np.float64).reshape(4)
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])


def polygon_to_box(poly) -> np.ndarray:
    """Axis-aligned bounding box ``x, y, w, h`` of the vertices (VOT's polygon -> rectangle)."""
    points = _as_polygon(poly)
    low, high = points.min(axis=0), points.max(axis=0)
    return np.array([low[0], low[1], high[0] - low[0], high[1] - low[1]])


def _rounded_box(box) -> tuple[int, int, int, int]:
    """VOT rounds each of x, y, w, h before rasterising a rectangle."""
    x, y, w, h = (int(v) for v in np.round(np.asarray(box, dtype=np.float64).reshape(4)))
    return x, y, w, h


def is_mask(region) -> bool:
    """Whether a first region is meant as a mask (bool; an image, H x W or H x W x C, of at
    least 3 x 3, whatever its size: one of another size is a mistake to name, not a polygon)
    rather than a box (4,) or a polygon ((N, 2) points, or their 2N numbers)."""
    arr = np.asarray(region)
    return arr.dtype == bool or arr.ndim == 3 or (arr.ndim == 2 and min(arr.shape) > 2)


def mask_pixels(region) -> np.ndarray:
    """An ``is_mask`` region as H x W bool: any non-zero colour channel (alpha ignored)."""
    arr = np.asarray(region)
    return arr[:, :, :3].any(axis=2) if arr.ndim == 3 else arr.astype(bool)


def box_to_mask(box, shape: tuple[int, int]) -> np.ndarray:
    """Pixels ``round(x) .. round(x)+round(w)-1`` (same for y), clipped to the frame."""
    height, width = int(shape[0]), int(shape[1])
    x, y, w, h = _rounded_box(box)
    mask = np.zeros((height, width), dtype=bool)
    mask[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
    return mask


def _fill_polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros((int(shape[0]), int(shape[1])), dtype=np.uint8)
    vertices = np.round(points).astype(np.int32)
    cv2.fillPoly(canvas, [vertices.reshape(-1, 1, 2)], 1)
    return canvas.astype(bool)


def polygon_to_mask(poly, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise the polygon with rounded, inclusive vertices (VOT's rule), clipped to the frame."""
    return _fill_polygon(_as_polygon(poly), shape)


def _bounds(mask: np.ndarray, box: np.ndarray | None = None,
            within: tuple[slice, slice] | None = None) -> tuple[slice, slice] | None:
    """Rows and columns of the mask's bounding box; None if empty. Work on a mask is done
    inside it: a tracked object covers a fraction of the frame. ``box``: the mask's box
    (``mask_to_box``) when the caller already has it; ``within``: (rows, columns) of the frame
    that hold every True pixel (a paste-back's footprint), searched instead of the frame."""
    if box is not None:
        x, y, w, h = (int(v) for v in box)
        return slice(y, y + h), slice(x, x + w)
    top = left = 0
    if within is not None:
        top, left = (part.indices(length)[0] for part, length in zip(within, mask.shape))
        mask = mask[within]
    rows = np.flatnonzero(np.any(mask, axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(np.any(mask[rows[0]:rows[-1] + 1], axis=0))
    return slice(top + rows[0], top + rows[-1] + 1), slice(left + cols[0], left + cols[-1] + 1)


def _box_of(rows: slice, cols: slice) -> np.ndarray:
    """The ``mask_to_box`` box of the rows and columns of a bounding box."""
    return np.array([cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start], dtype=np.float64)


@dataclass(frozen=True)
class MaskCounts:
    """A mask's pixels in each frame row from ``top`` and each frame column from ``left``
    (none outside them): its bounds, box and centroid without a pass over the mask. With
    device frame operations the device counts them with the paste-back
    (``frame_ops.DeviceFrames``); on the host ``of`` counts them in one pass."""

    rows: np.ndarray     # int64
    columns: np.ndarray  # int64
    top: int = 0
    left: int = 0
    # Rows and columns of the mask's bounding box (``_bounds``) and its box (``mask_to_box``);
    # None if empty. Every use of counts reads them (the tracker's box and its memory
    # policy both read the box), so they are worked out once, at once: Python 3.11's
    # cached_property takes a lock that the host threads of a lockstep would all share.
    bounds: tuple[slice, slice] | None = field(init=False, repr=False, compare=False)
    box: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bounds = self._bounding()
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "box", None if bounds is None else _box_of(*bounds))

    def _bounding(self) -> tuple[slice, slice] | None:
        rows = self.rows.nonzero()[0]
        if len(rows) == 0:
            return None
        cols = self.columns.nonzero()[0]
        return (slice(self.top + int(rows[0]), self.top + int(rows[-1]) + 1),
                slice(self.left + int(cols[0]), self.left + int(cols[-1]) + 1))

    @classmethod
    def of(cls, mask: np.ndarray, within: tuple[slice, slice] | None = None) -> "MaskCounts":
        """The counts of a bool ``mask``; ``within``: (rows, columns) of the frame that hold
        all its pixels, counted instead of the frame. OpenCV's row and column sums take a
        ninth of numpy's over bools."""
        top = left = 0
        if within is not None:
            top, left = (part.indices(length)[0] for part, length in zip(within, mask.shape))
            mask = mask[within]
        if mask.size == 0:
            return cls(np.zeros(mask.shape[0], np.int64), np.zeros(mask.shape[1], np.int64), top, left)
        pixels = mask.view(np.uint8)
        rows, columns = (cv2.reduce(pixels, axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.int64)
                         for axis in (1, 0))
        return cls(rows, columns, top, left)

    @property
    def solid(self) -> bool:
        """Whether the mask is every pixel of its bounding box (and not empty): one
        component, known without labelling it."""
        bounds = self.bounds
        if bounds is None:
            return False
        rows, columns = bounds
        return int(self.rows.sum()) == (rows.stop - rows.start) * (columns.stop - columns.start)

    def centroid(self) -> tuple[float, float] | None:
        """Mean pixel position ``(x, y)``; None if empty. Integer moments divided once: the
        same numbers as the mean of every pixel's position."""
        bounds = self.bounds
        if bounds is None:
            return None
        rows = self.rows[bounds[0].start - self.top:bounds[0].stop - self.top]
        columns = self.columns[bounds[1].start - self.left:bounds[1].stop - self.left]
        count = columns.sum()
        x = np.arange(bounds[1].start, bounds[1].stop) @ columns / count
        y = np.arange(bounds[0].start, bounds[0].stop) @ rows / count
        return float(x), float(y)


def mask_to_box(mask: np.ndarray, within: tuple[slice, slice] | None = None) -> np.ndarray | None:
    """Tight box with inclusive pixel extent (``w = x_max - x_min + 1``); None if empty.
    ``within``: as ``_bounds``'s."""
    bounds = _bounds(mask, within=within)
    return None if bounds is None else _box_of(*bounds)


def solid_box(mask: np.ndarray, thin: float) -> np.ndarray | None:
    """``mask_to_box`` of the mask without its parts thinner than ``thin`` x sqrt(area)
    (a morphological opening by a disc that wide): the lines of a kite or a paraglider,
    a few pixels wide and hundreds long, would otherwise set the box. The whole mask's box
    where the disc is under 3 pixels or the opening leaves nothing (a thin target)."""
    mask = np.asarray(mask, dtype=bool)
    width = int(round(thin * float(np.sqrt(mask.sum()))))
    if width < 3:
        return mask_to_box(mask)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width | 1, width | 1))
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, disc)
    return mask_to_box(opened) if opened.any() else mask_to_box(mask)


def main_components(mask: np.ndarray, min_fraction: float, within: tuple[slice, slice] | None = None,
                    counts: MaskCounts | None = None) -> tuple[np.ndarray, MaskCounts]:
    """The largest 8-connected component and every component of at least
    ``min_fraction`` of its area: drops stray blobs, keeps an object split by an occluder.
    Returns that mask and its counts (its box and centroid). A boolean mask with nothing to
    drop comes back as it is. ``within``: as ``MaskCounts.of``'s; ``counts``: the mask's,
    when known (no pass over it)."""
    mask = np.asarray(mask, dtype=bool)
    counts = MaskCounts.of(mask, within) if counts is None else counts
    bounds = counts.bounds
    # A solid rectangle is one component: a mask that covers the frame (an untrained
    # model's) cost 0.28 ms a frame in labels.
    if bounds is None or counts.solid:
        return mask, counts
    inner = mask[bounds]
    # 16-bit labels when they cannot overflow (an 8-connected component needs a 2x2 cell
    # of its own at least): half the memory traffic, twice as fast as 32-bit.
    most = -(-inner.shape[0] // 2) * -(-inner.shape[1] // 2)
    count, labels = cv2.connectedComponents(inner.view(np.uint8), connectivity=8,
                                            ltype=cv2.CV_16U if most < 2 ** 16 else cv2.CV_32S)
    if count <= 2:
        return mask, counts
    # in float64 whatever the labels' type, as on the device (device_components.py)
    areas = _label_areas(labels, count)[1:].astype(np.float64)
    keep = np.concatenate([[False], areas >= min_fraction * areas.max()])
    if keep[1:].all():
        return mask, counts
    kept = np.zeros(mask.shape, dtype=bool)
    kept_labels = np.flatnonzero(keep)
    if len(kept_labels) == 1:  # the largest alone, most often: one comparison, a third of the gather's time
        np.equal(labels, kept_labels[0], out=kept[bounds])
    else:
        kept[bounds] = np.take(keep, labels)
    return kept, MaskCounts.of(kept, bounds)


def _label_areas(labels: np.ndarray, count: int) -> np.ndarray:
    """Pixels per label. OpenCV's per-component statistics took several times the labelling
    (0.43 against 0.05 ms on a tracked DAVIS mask); a histogram of 16-bit labels (float
    counts, exact below 2**24 pixels) takes a third of ``np.bincount``, which 32-bit labels need."""
    if labels.dtype == np.uint16:
        return cv2.calcHist([labels], [0], None, [count], [0, count]).ravel()
    return np.bincount(labels.ravel(), minlength=count)


def _largest_contour(mask: np.ndarray, box: np.ndarray | None = None) -> np.ndarray | None:
    """Traced inside the mask's box and a one-pixel margin, in frame coordinates: the same
    contours, in the same order, as over the whole frame."""
    bounds = _bounds(mask, box)
    if bounds is None:
        return None
    top, left = max(bounds[0].start - 1, 0), max(bounds[1].start - 1, 0)
    inner = mask[top:bounds[0].stop + 1, left:bounds[1].stop + 1]
    contours, _ = cv2.findContours(inner.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE,
                                   offset=(left, top))
    if not contours:
        return None
    return max(contours, key=lambda c: (cv2.contourArea(c), len(c)))


def _fit_rectangle(mask: np.ndarray, rect, keep: float) -> tuple:
    """Shrink ``rect`` about its centre until it holds just ``keep`` of its mask pixels.

    Rule: express the mask pixels inside the rectangle in the rectangle's own axes; at
    each step shrink the width or the height by ``step`` (1% of the starting side, at
    least one pixel, symmetrically about the centre), choosing the axis that loses fewer
    mask pixels; stop when neither shrink keeps at least ``keep`` of the pixels the
    starting rectangle held. Pixel centres within half a pixel of an edge count as
    inside, because the minimum-area rectangle passes through boundary pixel centres.
    """
    (cx, cy), (width, height), angle = rect
    ys, xs = np.nonzero(mask)
    theta = np.deg2rad(angle)
    dx, dy = xs - cx, ys - cy
    u = np.abs(dx * np.cos(theta) + dy * np.sin(theta))
    v = np.abs(-dx * np.sin(theta) + dy * np.cos(theta))
    inside = (u <= width / 2 + 0.5) & (v <= height / 2 + 0.5)
    u, v = u[inside], v[inside]
    target = keep * len(u)
    steps = (max(1.0, 0.01 * width), max(1.0, 0.01 * height))
    size = [float(width), float(height)]

    def kept(w: float, h: float) -> int:
        return int(np.count_nonzero((u <= w / 2 + 0.5) & (v <= h / 2 + 0.5)))

    while True:
        candidates = []
        for axis in (0, 1):
            trial = list(size)
            trial[axis] -= steps[axis]
            if trial[axis] >= 0:
                count = kept(*trial)
                if count >= target:
                    candidates.append((count, axis, trial))
        if not candidates:
            return (cx, cy), tuple(size), angle
        _, _, size = max(candidates, key=lambda c: c[0])


def mask_to_rotated_box(mask: np.ndarray, fit: bool = False, keep: float = 0.9,
                        box: np.ndarray | None = None) -> np.ndarray | None:
    """Minimum-area rectangle of the mask's largest external contour, as 4 points.

    The vertices lie on boundary pixel centres, so ``polygon_to_mask`` of the result
    covers the component (VOT rasterises vertices inclusively). With ``fit`` the
    rectangle is shrunk to keep about ``keep`` of its mask pixels (see
    ``_fit_rectangle``), which trims thin protrusions. None if the mask is empty. ``box``:
    the mask's box, when known.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    contour = _largest_contour(np.asarray(mask, dtype=bool), box)
    if contour is None:
        return None
    rect = cv2.minAreaRect(contour)
    if fit:
        rect = _fit_rectangle(np.asarray(mask, dtype=bool), rect, keep)
    return cv2.boxPoints(rect).astype(np.float64)


def box_centre(box) -> tuple[float, float]:
    """The centre (x, y) of an x, y, w, h box whose pixels are x .. x + w - 1."""
    return box[0] + (box[2] - 1) / 2.0, box[1] + (box[3] - 1) / 2.0


def iou_boxes(a, b, bounds: tuple[float, float] | None = None):
    """IoU of continuous box areas (got10k ``rect_iou``); vectorised over ``(N, 4)``.

    With ``bounds = (W, H)`` both boxes are first clipped to the image as the GOT-10k
    toolkit does. Returns a float for single boxes, an array for stacks.
    """
    first = np.array(a, dtype=np.float64)
    second = np.array(b, dtype=np.float64)
    single = first.ndim == 1 and second.ndim == 1
    first, second = np.atleast_2d(first), np.atleast_2d(second)
    if bounds is not None:
        first, second = _clip_boxes(first, bounds), _clip_boxes(second, bounds)
    left = np.maximum(first[:, 0], second[:, 0])
    top = np.maximum(first[:, 1], second[:, 1])
    right = np.minimum(first[:, 0] + first[:, 2], second[:, 0] + second[:, 2])
    bottom = np.minimum(first[:, 1] + first[:, 3], second[:, 1] + second[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = first[:, 2] * first[:, 3] + second[:, 2] * second[:, 3] - inter
    iou = np.clip(inter / (union + np.finfo(np.float64).eps), 0.0, 1.0)
    return float(iou[0]) if single else iou


def _clip_boxes(boxes: np.ndarray, bounds) -> np.ndarray:
    width, height = bounds
    x = np.clip(boxes[:, 0], 0, width)
    y = np.clip(boxes[:, 1], 0, height)
    w = np.clip(boxes[:, 2], 0, width - x)
    h = np.clip(boxes[:, 3], 0, height - y)
    return np.stack([x, y, w, h], axis=1)


def encode_vot_mask(mask: np.ndarray) -> str:
    """VOT text form ``m<x0>,<y0>,<w>,<h>,<runs>`` of the mask's tight box.

    Runs scan the box row by row and alternate zero/one starting with zeros (a leading
    0 when the first pixel is set). An empty mask is ``m0,0,0,0,0`` as in the toolkit.
    """
    box = mask_to_box(np.asarray(mask, dtype=bool))
    if box is None:
        return "m0,0,0,0,0"
    x0, y0, w, h = (int(v) for v in box)
    flat = np.asarray(mask, dtype=bool)[y0:y0 + h, x0:x0 + w].ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return "m" + ",".join(str(v) for v in [x0, y0, w, h, *runs])


def decode_vot_mask(text: str, shape: tuple[int, int]) -> np.ndarray:
    """Full-frame bool mask from VOT's ``m...`` text; parts outside the frame are dropped."""
    body = text.strip()
    if not body.startswith("m"):
        raise InputError(f"not a VOT mask (must start with 'm'): {text[:60]!r}")
    try:
        values = [int(v) for v in _NUMBER_SEPARATOR.split(body[1:].strip()) if v]
    except ValueError as err:
        raise InputError(f"VOT mask has a non-integer value: {text[:60]!r}") from err
    if len(values) < 4:
        raise InputError(f"VOT mask needs x0,y0,w,h and runs: {text[:60]!r}")
    x0, y0, w, h = values[:4]
    runs = np.asarray(values[4:], dtype=np.int64)
    if w < 0 or h < 0 or np.any(runs < 0) or runs.sum() != w * h:
        raise InputError(f"VOT mask runs do not fill its {w}x{h} box: {text[:60]!r}")
    patch = np.repeat(np.arange(len(runs)) % 2 == 1, runs).reshape(h, w)
    height, width = int(shape[0]), int(shape[1])
    mask = np.zeros((height, width), dtype=bool)
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + h, height), min(x0 + w, width)
    if bottom > top and right > left:
        mask[top:bottom, left:right] = patch[top - y0:bottom - y0, left - x0:right - x0]
    return mask


def parse_region(text: str, shape: tuple[int, int] | None = None) -> Region:
    """A ground-truth line: 4 numbers -> box, >= 6 (even) -> polygon, ``m...`` -> mask.

    Numbers may be separated by commas, tabs or spaces (OTB files mix them). A mask
    needs the frame ``shape`` = (H, W).
    """
    body = text.strip()
    if body.startswith("m"):
        if shape is None:
            raise InputError(f"a VOT mask region needs the frame size: {body[:60]!r}")
        return decode_vot_mask(body, shape)
    try:
        values = np.array([float(v) for v in _NUMBER_SEPARATOR.split(body) if v], dtype=np.float64)
    except ValueError as err:
        raise InputError(f"region is not a list of numbers: {body[:60]!r}") from err
    if len(values) == 4:
        return values
    if len(values) >= 6 and len(values) % 2 == 0:
        return values.reshape(-1, 2)
    raise InputError(f"region must have 4 numbers (box) or an even number >= 6 (polygon): {body[:60]!r}")


def check_box(box, shape: tuple[int, int], name: str = "box") -> np.ndarray:
    """The box as a float array, or InputError if it is NaN, empty or outside the ``(H, W)`` frame."""
    values = np.asarray(box, dtype=np.float64).ravel()
    if values.size != 4:
        raise InputError(f"{name} must be 4 numbers x,y,w,h, got {values.tolist()}")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name} has a NaN or infinite value: {values.tolist()}")
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise InputError(f"{name} has no area (w={w:g}, h={h:g}): {values.tolist()}")
    height, width = shape[0], shape[1]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise InputError(f"{name} {values.tolist()} lies entirely outside the {width}x{height} image")
    return values


def parse_numbers(text: str, name: str) -> np.ndarray:
    """The numbers of a command's ``--box`` / ``--polygon`` text (commas or semicolons)."""
    try:
        values = np.array([float(v) for v in text.replace(";", ",").split(",")], dtype=np.float64)
    except ValueError:
        raise InputError(f"{name} {text!r} is not a comma-separated list of numbers") from None
    return values


def check_polygon(polygon: np.ndarray, shape: tuple[int, int], name: str = "polygon") -> np.ndarray:
    """``check_box`` of the polygon's bounds, and InputError if its points lie on one line:
    a diagonal one has bounds with an area but encloses none, and its rasterised line is
    no target. (Not its signed area, which a self-crossing corner order cancels to 0.)"""
    polygon = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    check_box(polygon_to_box(polygon), shape, name=f"{name}'s bounding box")
    spread = np.linalg.svd(polygon - polygon.mean(axis=0), compute_uv=False)
    if spread[1] <= 1e-9 * max(spread[0], 1.0):  # no extent across the line through them
        raise InputError(f"{name} {polygon.reshape(-1).tolist()} encloses no area: its points lie on one line")
    return polygon
