"""Where a frame is cropped and the decoded crop is pasted back: OpenCV on the host, or
torch on the tracker's device.

``HostFrames`` (``frame_ops="opencv"``; what ``auto`` picks on a CPU) resamples the uint8
frame with OpenCV's bilinear ``warpAffine``, as training crops are made.
``DeviceFrames`` (``"torch"``; what ``auto`` picks on CUDA) uploads each frame once and
does the same bilinear resampling with ``grid_sample`` there, so only the outputs come
back, in one transfer. The two differ by rounding (OpenCV rounds crops to uint8 and uses
fixed-point weights): under one grey level in a crop, 1e-5 in a pasted probability.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import accumulate, repeat
from typing import Callable, Literal, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from samn_tracker.batch_rows import grouped
from samn_tracker.crops import CropWindow, crop_image, paste_back
from samn_tracker.device_components import MainComponents
from samn_tracker.devices import ReadBack, to_device
from samn_tracker.regions import MaskCounts

FrameOpsName = Literal["auto", "opencv", "torch"]


def image_to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) float in [0, 1] on ``device``; asynchronous when the
    array lies in pinned memory (``datasets.prefetch.prefetched(pin=True)``)."""
    return unit_float(torch.from_numpy(np.ascontiguousarray(image)).to(device, non_blocking=True)[None])


def unit_float(frames: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> (n, 3, H, W) float in [0, 1], on the frames' device."""
    return frames.permute(0, 3, 1, 2).float().div_(255.0)


class HostFrames:
    """OpenCV crops and paste-back on the host."""

    def __init__(self, device: torch.device):
        self.device = device

    def load(self, image: np.ndarray) -> np.ndarray:
        return image

    def crop(self, frame: np.ndarray, window: CropWindow) -> torch.Tensor:
        return image_to_tensor(crop_image(frame, window), self.device)

    def crops(self, images: Sequence[np.ndarray], windows: Sequence[Sequence[CropWindow]]) -> torch.Tensor:
        """Every image's crops, image by image: (sum of the windows, 3, S, S)."""
        return torch.cat([self.crop(image, w) for image, group in zip(images, windows) for w in group])

    def to_frames(self, crop_values: torch.Tensor, windows: Sequence[CropWindow],
                  shapes: Sequence[tuple[int, int]], extra: Sequence[torch.Tensor] = (),
                  threshold: Optional[float] = None, values: bool = True,
                  components: Optional[MainComponents] = None) -> "Pasted":
        """Per-crop maps (B, S, S) pasted into their frames, and ``extra`` read back with them.
        ``threshold``, ``values`` and ``components`` (``DeviceFrames``'s) change nothing:
        the whole map is made on the host, and its masks there."""

        read_back = ReadBack(crop_values, *extra)

        def paste(host: list[np.ndarray]) -> tuple[list[MapBuilder], list[np.ndarray]]:
            return ([partial(_pasted_back, v, w, shape) for v, w, shape in zip(host[0], windows, shapes)],
                    _kept(host[1:], read_back))

        return Pasted(read_back, paste)


class DeviceFrames:
    """``grid_sample`` crops and paste-back on the tracker's device.

    A lockstep batch is cropped and pasted back per frame size, not per target: one
    upload, one ``grid_sample`` per crop of a target (in the tracker's ``front_pass``), one
    per paste-back, whatever the batch size. The sampling positions are worked out on the
    host (a few numbers per target) and go up in one asynchronous copy."""

    def __init__(self, device: torch.device):
        self.device = device

    def load(self, image: np.ndarray) -> torch.Tensor:
        return image_to_tensor(image, self.device)

    def crop(self, frame: torch.Tensor, window: CropWindow) -> torch.Tensor:
        """(1, 3, S, S): each crop pixel samples the frame; outside it repeats the border."""
        return self._crop(frame, [window])

    @staticmethod
    def upload(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
        """(n, H, W, 3) uint8 on ``device`` from frames of one size, each sent as it lies
        (asynchronously from pinned memory)."""
        uploads = [torch.from_numpy(np.ascontiguousarray(image)).to(device, non_blocking=True) for image in images]
        return uploads[0][None] if len(uploads) == 1 else torch.stack(uploads)

    @staticmethod
    def crop_axes(windows: Sequence[CropWindow], shape: tuple[int, int]) -> np.ndarray:
        """(n, 2, S) float32: the frame columns (row 0) and rows (row 1) that each window's
        crop samples in a frame of ``shape``, in ``grid_sample``'s [-1, 1]: worked out on the
        host, a few numbers per target."""
        height, width = shape
        size = windows[0].out_size
        crop_pixels = np.arange(size, dtype=np.float32) - (size - 1) / 2.0
        scales = np.array([w.scale for w in windows], dtype=np.float32)[:, None, None]
        centres = np.array([(w.cx, w.cy) for w in windows], dtype=np.float32)[:, :, None]
        spans = np.array([max(width - 1, 1), max(height - 1, 1)], dtype=np.float32)[:, None]
        return (crop_pixels / scales + centres) / spans * 2 - 1

    @staticmethod
    def sample_crops(frames: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
        """(n, 3, S, S) crops of n frames (n, 3, H, W) at ``crop_axes`` (n, 2, S) on their
        device; outside a frame repeats its border."""
        return F.grid_sample(frames, grids_from_axes(axes[:, 0], axes[:, 1]), mode="bilinear",
                             padding_mode="border", align_corners=True)

    def _crop(self, frames: torch.Tensor, windows: Sequence[CropWindow]) -> torch.Tensor:
        """(n, 3, S, S) from n frames of one size, a window each."""
        axes = to_device(torch.from_numpy(self.crop_axes(windows, tuple(frames.shape[2:]))), self.device)
        return self.sample_crops(frames, axes)

    def to_frames(self, crop_values: torch.Tensor, windows: Sequence[CropWindow],
                  shapes: Sequence[tuple[int, int]], extra: Sequence[torch.Tensor] = (),
                  threshold: Optional[float] = None, values: bool = True,
                  components: Optional[MainComponents] = None) -> "Pasted":
        """Only the frame rows and columns a crop reaches are sampled and read back: outside
        them a paste-back is exactly zero, so each map is rebuilt on the host from them.
        With a ``threshold`` the device also makes each map's mask above it and counts its
        pixels per row and column (``FrameMap.above``, ``counts_above``): the host then
        makes no pass over the map for them, and without ``values`` (nothing reads the
        probabilities) only the masks come back, a quarter of the maps' bytes. With
        ``components`` too, each mask is its main components (``FrameMap.components_kept``)."""
        if threshold is None and not values:
            raise ValueError("to_frames reads back the maps' values, their masks or both")
        if components is not None and threshold is None:
            raise ValueError("to_frames keeps the main components of masks it makes: give a threshold")
        groups = grouped(tuple(shape) for shape in shapes)
        rows = crop_values.split(1)
        pasted = [self._paste(crop_values if len(groups) == 1 else torch.cat([rows[i] for i in members]),
                              [windows[i] for i in members], shapes[members[0]]) for members in groups]
        sent = [group.read_back_parts(threshold, values, components) for group in pasted]
        read_back = ReadBack(*(part for parts in sent for part in parts), *extra)

        def rebuilt(host: list[np.ndarray]) -> tuple[list[MapBuilder], list[np.ndarray]]:
            """Each map copied once out of the read-back, straight into its frame."""
            builders = [None] * len(windows)
            taken = 0
            for members, group, parts in zip(groups, pasted, sent):
                arrays = iter(host[taken:taken + len(parts)])
                taken += len(parts)
                ends = list(accumulate(block.rows for block in group.blocks))
                value_blocks = _row_blocks(next(arrays), ends) if values else [None] * len(members)
                if threshold is None:
                    masks = [None] * len(members)
                else:
                    mask_blocks, row_counts, column_counts = _row_blocks(next(arrays), ends), next(arrays), next(arrays)
                    settled = next(arrays) if components is not None else repeat(False)
                    masks = [(threshold, *counted) for counted in zip(mask_blocks, row_counts, column_counts, settled)]
                for i, block, value_block, mask in zip(members, group.blocks, value_blocks, masks):
                    builders[i] = partial(_in_frame, block, shapes[i], read_back.page_locked, value_block, mask)
            return builders, _kept(host[taken:], read_back)

        return Pasted(read_back, rebuilt)

    def _paste(self, values: torch.Tensor, windows: Sequence[CropWindow], shape: tuple[int, int]) -> "PastedGroup":
        """(n, S, S) crops of frames of ``shape`` -> per crop the frame rows and columns whose
        pixels sample the crop within two crop pixels of its edge (bilinear sampling reaches
        one pixel out; beyond it the zero padding gives exactly 0). One ``grid_sample``
        samples a block of the largest such height and width for every crop, each block
        placed over its crop's rows and columns; the sampling positions are those of the
        whole frame, so the values are the same."""
        size = values.shape[-1]
        half = (windows[0].out_size - 1) / 2.0
        scales = _column([w.scale for w in windows])
        axes = []
        for centres, length in (([w.cy for w in windows], shape[0]), ([w.cx for w in windows], shape[1])):
            crop = (np.arange(length, dtype=np.float32)[None] - _column(centres)) * scales + half
            near = (crop >= -2) & (crop <= size + 1)  # frame rows (columns) that sample the crop
            reached = near.any(axis=1)
            first = np.where(reached, near.argmax(axis=1), 0)
            end = np.where(reached, length - near[:, ::-1].argmax(axis=1), 0)
            block = max(int((end - first).max()), 1)
            start = np.minimum(first, length - block)
            axes.append((np.stack([crop[i, t:t + block] for i, t in enumerate(start)]), first, end, start))
        (y, top, bottom, y0), (x, _, _, x0) = axes
        maps = F.grid_sample(values[:, None].float(),
                             sampling_grids(*(c / (size - 1) * 2 - 1 for c in (x, y)), self.device),
                             mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]
        height = maps.shape[1]
        counts, offsets = bottom - top, top - y0
        index = None
        if not ((counts == height) & (offsets == 0)).all():
            index = to_device(torch.from_numpy(np.concatenate(
                [i * height + np.arange(o, o + c) for i, (o, c) in enumerate(zip(offsets, counts))])), self.device)
        return PastedGroup(maps, index, [PastedBlock(int(t), int(left), int(c), int(o))
                                         for t, left, c, o in zip(top, x0, counts, offsets)], tuple(shape))


@dataclass
class PastedBlock:
    """Where a crop pasted back on the device lies: ``rows`` frame rows from ``top``, the
    block's columns from ``left``; ``offset``: its first row's place in the sampled block."""

    top: int
    left: int
    rows: int
    offset: int


@dataclass
class PastedGroup:
    """The paste-back of one frame size's crops on the device: the sampled blocks, which of
    their rows a crop reaches (``index``; None: all), where each crop's rows lie, and the
    frames' size."""

    maps: torch.Tensor            # (n, height, width)
    index: Optional[torch.Tensor]  # rows of ``maps`` flattened to (n * height, width)
    blocks: list[PastedBlock]
    frame: tuple[int, int]

    def rows(self, blocks: torch.Tensor) -> torch.Tensor:
        """Each crop's rows of ``blocks`` (n, height, width), one crop after the other."""
        flat = blocks.reshape(-1, blocks.shape[-1])
        return flat if self.index is None else flat.index_select(0, self.index)

    def read_back_parts(self, threshold: Optional[float], values: bool,
                        components: Optional[MainComponents] = None) -> list[torch.Tensor]:
        """What comes back of the group: its rows' values; with a ``threshold`` their mask and
        the pixels above it per sampled row (n, height) and per column (n, width), exact
        below 2**24; with ``components`` that mask's main components instead, and whether
        each mask's labels settled (n,; where not, the mask is as it was). A block's rows
        outside its crop's reach are zero, so the column counts are those of the crop's rows,
        and its components those of the crop's mask."""
        parts = [self.rows(self.maps)] if values else []
        if threshold is not None:
            above, settled = self.maps > threshold, []
            if components is not None:
                above, done = components(above, self.frame)
                settled = [done]
            parts += [self.rows(above), above.sum(2, dtype=torch.float32), above.sum(1, dtype=torch.float32),
                      *settled]
        return parts


@dataclass
class MaskBlock:
    """A map's block above ``threshold``, made on the device, and its counts; ``components``:
    the block is the mask's main components already (``device_components.py``)."""

    threshold: float
    block: np.ndarray  # bool, the map's block's shape
    counts: MaskCounts
    components: bool = False


@dataclass
class FrameMap:
    """A float32 map in a frame of ``shape``: ``block`` at rows from ``top`` and columns from
    ``left``, zero elsewhere, as a paste-back leaves it. The work on a tracked frame's map
    (its mask, a mean over it) touches the block only, and the whole frame is made only when
    asked for (``Prediction.probability``): for a small target in a large frame most of it
    is zero. From the device it may come with its mask (``mask``), or as that mask alone
    (``block`` None) where nothing reads its values."""

    block: Optional[np.ndarray]
    top: int
    shape: tuple[int, int]
    left: int = 0
    mask: Optional[MaskBlock] = None

    @property
    def footprint(self) -> tuple[slice, slice]:
        """Frame rows and columns outside which the map is zero (the ``within`` of
        ``regions.MaskCounts.of`` and ``main_components``)."""
        rows, columns = (self.mask.block if self.block is None else self.block).shape
        return slice(self.top, self.top + rows), slice(self.left, self.left + columns)

    def full(self) -> np.ndarray:
        """The (H, W) map."""
        block = self._values()
        if block.shape == tuple(self.shape):
            return block
        frame = np.zeros(self.shape, dtype=np.float32)
        frame[self.footprint] = block
        return frame

    def above(self, threshold: float) -> np.ndarray:
        """(H, W) bool: ``full() > threshold``, for ``threshold`` >= 0 (zero pixels stay False)."""
        made = self._mask_at(threshold)
        if made is not None and made.block.shape == tuple(self.shape):
            return made.block.copy()
        mask = np.zeros(self.shape, dtype=bool)
        if made is not None:
            mask[self.footprint] = made.block
        else:
            np.greater(self._values(), threshold, out=mask[self.footprint])
        return mask

    def counts_above(self, threshold: float) -> Optional[MaskCounts]:
        """The row and column counts of ``above(threshold)``, when the device made them."""
        made = self._mask_at(threshold)
        return None if made is None else made.counts

    def components_kept(self, threshold: float) -> bool:
        """Whether ``above(threshold)`` is its main components already, kept by the device."""
        made = self._mask_at(threshold)
        return made is not None and made.components

    def _mask_at(self, threshold: float) -> Optional[MaskBlock]:
        """The device's mask, when it was made at ``threshold``."""
        return self.mask if self.mask is not None and self.mask.threshold == threshold else None

    def mean_where(self, mask: np.ndarray) -> float:
        """The mean of the map over a (H, W) mask that is False outside ``footprint``
        (``above``'s masks): the same values, in the same order, as ``full()[mask]``."""
        return float(self._values()[mask[self.footprint]].mean())

    def _values(self) -> np.ndarray:
        if self.block is None:
            raise ValueError("this map's values were not read back, only its mask")
        return self.block


MapBuilder = Callable[[], FrameMap]


@dataclass
class Pasted:
    """``to_frames``'s maps and extras on their way to the host: the read-back is queued
    when ``to_frames`` returns, ``wait_each`` waits for it."""

    read_back: ReadBack
    finish: Callable[[list[np.ndarray]], tuple[list[MapBuilder], list[np.ndarray]]]

    def wait_each(self) -> tuple[list[MapBuilder], list[np.ndarray]]:
        """(each map as the function that makes its ``FrameMap`` in its frame, its rows copied
        out of the read-back; extras), so that the threads doing a batch's per-target host
        work make their own maps in parallel, not the thread that waits."""
        return self.finish(self.read_back.wait())


def _pasted_back(crop_values: np.ndarray, window: CropWindow, shape: tuple[int, int]) -> FrameMap:
    """OpenCV's paste-back, which makes the whole frame."""
    return FrameMap(paste_back(crop_values, window, shape), 0, shape)


def _in_frame(part: PastedBlock, shape: tuple[int, int], page_locked: bool, values: Optional[np.ndarray],
              mask: Optional[tuple[float, np.ndarray, np.ndarray, np.ndarray, bool]]) -> FrameMap:
    """``part``'s map from its read-back blocks (its values; its mask: a threshold, the mask's
    block, its sampled block's row and column counts, and whether it is its main components),
    the values copied out of page-locked memory (``_kept``; ``above`` copies the mask)."""
    made = None
    if mask is not None:
        threshold, block, rows, columns, components = mask
        rows = rows[part.offset:part.offset + part.rows].astype(np.int64)
        made = MaskBlock(threshold, block, MaskCounts(rows, columns.astype(np.int64), part.top, part.left),
                         bool(components))
    if values is not None and page_locked:
        values = values.copy()
    return FrameMap(values, part.top, shape, part.left, made)


def _row_blocks(rows: np.ndarray, ends: list[int]) -> list[np.ndarray]:
    """``rows`` cut into consecutive blocks that end at ``ends``: ``np.split``'s views,
    without its Python layers (a few microseconds a block, per target and step)."""
    return [rows[start:end] for start, end in zip([0, *ends[:-1]], ends)]


def _kept(arrays: list[np.ndarray], read_back: ReadBack) -> list[np.ndarray]:
    """``arrays`` of ``read_back`` the caller's own: copied out of page-locked memory."""
    return [a.copy() for a in arrays] if read_back.page_locked else arrays


def _column(values: Sequence[float]) -> np.ndarray:
    """(n, 1) float32: one number per target, broadcast along an axis. The axes are float32
    arithmetic, as torch's on the device, so a CPU gives the same crops as before batching."""
    return np.array(values, dtype=np.float32)[:, None]


def sampling_grids(x: np.ndarray, y: np.ndarray, device: torch.device) -> torch.Tensor:
    """(n, len(y), len(x), 2) ``grid_sample`` grids from host axes (n, W) and (n, H) in
    [-1, 1], sent to ``device`` in one copy that does not wait for it (``to_device``)."""
    both = to_device(torch.from_numpy(np.concatenate([x, y], axis=1)), device)
    return grids_from_axes(*both.split([x.shape[1], y.shape[1]], dim=1))


def grids_from_axes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 2) ``grid_sample`` grids from axes (n, W) and (n, H) on the device."""
    n, width = x.shape
    height = y.shape[1]
    return torch.stack([x[:, None, :].expand(n, height, width), y[:, :, None].expand(n, height, width)], dim=-1)


def frame_ops(name: FrameOpsName, device: torch.device) -> HostFrames | DeviceFrames:
    """``auto``: on the device when it is a GPU, with OpenCV on a CPU."""
    if name == "torch" or (name == "auto" and device.type == "cuda"):
        return DeviceFrames(device)
    return HostFrames(device)
