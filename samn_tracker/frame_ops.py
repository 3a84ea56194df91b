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
from typing import Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from samn_tracker.batch_rows import grouped
from samn_tracker.crops import CropWindow, crop_image, paste_back
from samn_tracker.devices import ReadBack, to_device

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
                  shapes: Sequence[tuple[int, int]], extra: Sequence[torch.Tensor] = ()) -> "Pasted":
        """Per-crop maps (B, S, S) pasted into their frames, and ``extra`` read back with them."""

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
        crop_pixels = np.arange(size, dtype=np.float32)[None]
        half = (size - 1) / 2.0
        axes = []
        for centres, length in (([w.cx for w in windows], width), ([w.cy for w in windows], height)):
            frame_pixels = (crop_pixels - half) / _column([w.scale for w in windows]) + _column(centres)
            axes.append(frame_pixels / max(length - 1, 1) * 2 - 1)
        return np.stack(axes, axis=1)

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
                  shapes: Sequence[tuple[int, int]], extra: Sequence[torch.Tensor] = ()) -> "Pasted":
        """Only the frame rows and columns a crop reaches are sampled and read back: outside
        them a paste-back is exactly zero, so each map is rebuilt on the host from them."""
        groups = grouped(tuple(shape) for shape in shapes)
        rows = crop_values.split(1)
        pasted = [self._paste(crop_values if len(groups) == 1 else torch.cat([rows[i] for i in members]),
                              [windows[i] for i in members], shapes[members[0]]) for members in groups]
        read_back = ReadBack(*(kept for kept, _ in pasted), *extra)

        def rebuilt(host: list[np.ndarray]) -> tuple[list[MapBuilder], list[np.ndarray]]:
            """Each map copied once out of the read-back, straight into its frame."""
            builders = [None] * len(windows)
            for members, (_, parts), kept in zip(groups, pasted, host):
                blocks = np.split(kept, np.cumsum([part.rows for part in parts])[:-1])
                for i, part, block in zip(members, parts, blocks):
                    builders[i] = partial(_in_frame, block, part, shapes[i], read_back.page_locked)
            return builders, _kept(host[len(pasted):], read_back)

        return Pasted(read_back, rebuilt)

    def _paste(self, values: torch.Tensor, windows: Sequence[CropWindow],
               shape: tuple[int, int]) -> tuple[torch.Tensor, list["PastedBlock"]]:
        """(n, S, S) crops of frames of ``shape`` -> per crop the frame rows and columns whose
        pixels sample the crop within two crop pixels of its edge (bilinear sampling reaches
        one pixel out; beyond it the zero padding gives exactly 0). One ``grid_sample``
        samples a block of the largest such height and width for every crop, each block
        placed over its crop's rows and columns; the sampling positions are those of the
        whole frame, so the values are the same. Returns each crop's rows of its block, one
        crop after the other (gathered by one index where they are not the whole blocks),
        and where each lies."""
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
        height, width = maps.shape[1:]
        counts, offsets = bottom - top, top - y0
        flat = maps.reshape(-1, width)
        if not ((counts == height) & (offsets == 0)).all():
            index = np.concatenate([i * height + np.arange(o, o + c) for i, (o, c) in enumerate(zip(offsets, counts))])
            flat = flat.index_select(0, to_device(torch.from_numpy(index), self.device))
        return flat, [PastedBlock(int(t), int(left), int(c)) for t, left, c in zip(top, x0, counts)]


@dataclass
class PastedBlock:
    """Where a crop pasted back on the device lies: ``rows`` frame rows from ``top``, the
    block's columns from ``left``."""

    top: int
    left: int
    rows: int


@dataclass
class FrameMap:
    """A float32 map in a frame of ``shape``: ``block`` at rows from ``top`` and columns from
    ``left``, zero elsewhere, as a paste-back leaves it. The work on a tracked frame's map
    (its mask, a mean over it) touches the block only, and the whole frame is made only when
    asked for (``Prediction.probability``): for a small target in a large frame most of it
    is zero."""

    block: np.ndarray
    top: int
    shape: tuple[int, int]
    left: int = 0

    @property
    def footprint(self) -> tuple[slice, slice]:
        """Frame rows and columns outside which the map is zero (``regions._bounds``'s
        ``within``)."""
        return (slice(self.top, self.top + self.block.shape[0]),
                slice(self.left, self.left + self.block.shape[1]))

    def full(self) -> np.ndarray:
        """The (H, W) map."""
        if self.block.shape == tuple(self.shape):
            return self.block
        frame = np.zeros(self.shape, dtype=np.float32)
        frame[self.footprint] = self.block
        return frame

    def above(self, threshold: float) -> np.ndarray:
        """(H, W) bool: ``full() > threshold``, for ``threshold`` >= 0 (zero pixels stay False)."""
        if self.block.shape == tuple(self.shape):
            return self.block > threshold
        mask = np.zeros(self.shape, dtype=bool)
        mask[self.footprint] = self.block > threshold
        return mask

    def mean_where(self, mask: np.ndarray) -> float:
        """The mean of the map over a (H, W) mask that is False outside ``footprint``
        (``above``'s masks): the same values, in the same order, as ``full()[mask]``."""
        return float(self.block[mask[self.footprint]].mean())


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


def _in_frame(block: np.ndarray, part: PastedBlock, shape: tuple[int, int], page_locked: bool) -> FrameMap:
    """``part``'s map from its read-back block, copied out of page-locked memory (``_kept``)."""
    return FrameMap(block.copy() if page_locked else block, part.top, shape, part.left)


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
