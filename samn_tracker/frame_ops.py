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

from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from samn_tracker.crops import CropWindow, crop_image, paste_back
from samn_tracker.devices import to_host

FrameOpsName = Literal["auto", "opencv", "torch"]


def image_to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) float in [0, 1] on ``device``; asynchronous when the
    array lies in pinned memory (``datasets.prefetch.prefetched(pin=True)``)."""
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device, non_blocking=True)
    return t.permute(2, 0, 1)[None].float().div_(255.0)


class HostFrames:
    """OpenCV crops and paste-back on the host."""

    def __init__(self, device: torch.device):
        self.device = device

    def load(self, image: np.ndarray) -> np.ndarray:
        return image

    def crop(self, frame: np.ndarray, window: CropWindow) -> torch.Tensor:
        return image_to_tensor(crop_image(frame, window), self.device)

    def to_frames(self, crop_values: torch.Tensor, windows: Sequence[CropWindow],
                  shapes: Sequence[tuple[int, int]], extra: Sequence[torch.Tensor] = ()
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-crop maps (B, S, S) pasted into their frames, and ``extra`` read back with them."""
        host, *rest = to_host(crop_values, *extra)
        return [paste_back(v, w, shape) for v, w, shape in zip(host, windows, shapes)], rest


class DeviceFrames:
    """``grid_sample`` crops and paste-back on the tracker's device."""

    def __init__(self, device: torch.device):
        self.device = device

    def load(self, image: np.ndarray) -> torch.Tensor:
        return image_to_tensor(image, self.device)

    def crop(self, frame: torch.Tensor, window: CropWindow) -> torch.Tensor:
        """(1, 3, S, S): each crop pixel samples the frame; outside it repeats the border."""
        half = (window.out_size - 1) / 2.0
        crop_pixels = torch.arange(window.out_size, dtype=torch.float32, device=self.device)
        axes = []
        for centre, size in ((window.cx, frame.shape[3]), (window.cy, frame.shape[2])):
            frame_pixels = (crop_pixels - half) / window.scale + centre
            axes.append(frame_pixels / max(size - 1, 1) * 2 - 1)
        return F.grid_sample(frame, sampling_grid(*axes), mode="bilinear", padding_mode="border",
                             align_corners=True)

    def to_frames(self, crop_values: torch.Tensor, windows: Sequence[CropWindow],
                  shapes: Sequence[tuple[int, int]], extra: Sequence[torch.Tensor] = ()
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        pasted = [self._paste(values, window, shape)
                  for values, window, shape in zip(crop_values, windows, shapes)]
        host = to_host(*pasted, *extra)
        return host[:len(pasted)], host[len(pasted):]

    def _paste(self, values: torch.Tensor, window: CropWindow, shape: tuple[int, int]) -> torch.Tensor:
        """(S, S) -> (H, W): every frame pixel samples the crop; zero outside it."""
        size = values.shape[-1]
        half = (window.out_size - 1) / 2.0
        axes = []
        for centre, length in ((window.cx, shape[1]), (window.cy, shape[0])):
            frame_pixels = torch.arange(length, dtype=torch.float32, device=values.device)
            axes.append(((frame_pixels - centre) * window.scale + half) / (size - 1) * 2 - 1)
        return F.grid_sample(values[None, None].float(), sampling_grid(*axes), mode="bilinear",
                             padding_mode="zeros", align_corners=True)[0, 0]


def sampling_grid(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1, len(y), len(x), 2) sampling grid of ``grid_sample`` from its two axes in [-1, 1]."""
    gy, gx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([gx, gy], dim=-1)[None]


def frame_ops(name: FrameOpsName, device: torch.device) -> HostFrames | DeviceFrames:
    """``auto``: on the device when it is a GPU, with OpenCV on a CPU."""
    if name == "torch" or (name == "auto" and device.type == "cuda"):
        return DeviceFrames(device)
    return HostFrames(device)
