"""Which process this is (``torchrun``'s RANK / WORLD_SIZE / LOCAL_RANK) and which device it uses.

Tracking, evaluation and training all resolve a device name here, so ``auto`` and a bare
``cuda`` mean the same everywhere: this process's GPU (``cuda:LOCAL_RANK``, round-robin
when there are more processes than GPUs) when CUDA is present. On a CPU, ``cpu_threads``
says how many threads a tracking run uses.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NoReturn, Optional, Sequence

import numpy as np
import torch

from samn_tracker.errors import InputError

if TYPE_CHECKING:
    from samn_tracker.tracker import SAMNTracker


@dataclass(frozen=True)
class Rank:
    """This process's place among ``world`` processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1  # processes on this node, which share its cores

    @classmethod
    def from_env(cls) -> "Rank":
        env = os.environ
        try:
            rank = cls(rank=int(env.get("RANK", 0)), world=int(env.get("WORLD_SIZE", 1)),
                       local_rank=int(env.get("LOCAL_RANK", 0)),
                       local_world=int(env.get("LOCAL_WORLD_SIZE", 1)))
        except ValueError:
            raise InputError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be integers "
                             f"(got {env.get('RANK')!r}, {env.get('WORLD_SIZE')!r}, "
                             f"{env.get('LOCAL_RANK')!r}, {env.get('LOCAL_WORLD_SIZE')!r})") from None
        if not 0 <= rank.rank < rank.world:
            raise InputError(f"RANK={rank.rank} is outside WORLD_SIZE={rank.world}")
        return rank

    def take(self, items: Sequence) -> list:
        """This rank's share: every ``world``-th item from ``rank``."""
        return list(items[self.rank::self.world])

    def device(self, requested: str = "auto") -> torch.device:
        return pick_device(requested, self.local_rank)


def pick_device(requested: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` (or None, as Python callers say "the default"): this rank's GPU when CUDA is
    present, else the CPU; ``cuda`` without an index: this rank's GPU; ``cpu`` or ``cuda:N``
    as given. Any other device (``mps``, ``xpu``, ``meta``), CUDA without it or a GPU that is
    not there is an ``InputError`` here, before a command writes anything, not a traceback
    mid-run."""
    if requested is None or str(requested) == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        requested = "cuda"
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):  # TypeError: not a name at all (a list, a float)
        raise InputError(f"device {str(requested)!r} is not a device name (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        unavailable(requested, "samn runs on CPUs and CUDA GPUs only")
    if not torch.cuda.is_available():
        unavailable(requested, "CUDA is not available", instead="cpu")
    count = torch.cuda.device_count()
    if device.index is None:
        return torch.device("cuda", local_rank % count)
    if device.index >= count:
        unavailable(requested, f"this machine has {count} GPU{'s' if count > 1 else ''}")
    return device


def unavailable(requested: str | torch.device, reason: str, instead: str = "cpu or cuda") -> NoReturn:
    raise InputError(f"device {str(requested)!r} is not available here ({reason}); use {instead}")


def synchroniser(device: torch.device | None) -> Callable[[], None]:
    """Waits for queued CUDA work, so a clock read after it measures the work; a no-op on CPU."""
    if device is not None and device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without the host waiting for the device's queue: CUDA
    copies from pageable memory only after the work queued before them, so the copy goes
    through page-locked memory instead (what lets two lockstep groups overlap)."""
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


def to_device_together(arrays: Sequence[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Float32 host arrays on ``device`` with one copy (``to_device``), as views of it."""
    flat = to_device(torch.from_numpy(np.concatenate([a.reshape(-1) for a in arrays])), device)
    return [part.view(a.shape) for part, a in zip(flat.split([a.size for a in arrays]), arrays)]


class ReadBack:
    """Numpy views of tensors, read back in one device-to-host transfer (one wait for the
    device instead of one per tensor): bool tensors as bool, the others as float32 (a
    mask takes a quarter of a map's bytes). The transfer is queued now, behind the device
    work already issued, and ``wait`` gives the arrays: on CUDA it goes to page-locked
    memory without stopping the host, so the host can issue more work (another lockstep
    group's step) before it waits; on a CPU there is nothing to wait for. On CUDA the
    arrays lie in that page-locked buffer: a caller copies out what it keeps (page-locked
    memory is scarce), once, into the arrays it returns."""

    def __init__(self, *tensors: torch.Tensor):
        self._shapes = [t.shape for t in tensors]
        self._is_bool = [t.dtype == torch.bool for t in tensors]
        self._done: torch.cuda.Event | None = None
        if not tensors:
            self._bytes = None
            return
        floats = [_flat_float(t) for t, is_bool in zip(tensors, self._is_bool) if not is_bool]
        bools = [_flat(t) for t, is_bool in zip(tensors, self._is_bool) if is_bool]
        self._float_count = sum(f.numel() for f in floats)
        # the float32 values' bytes first (aligned at the buffer's start), the bools' after
        flat = _joined([_joined(part).view(torch.uint8) for part in (floats, bools) if part])
        if flat.is_cuda:
            self._bytes = torch.empty(flat.shape, dtype=torch.uint8, pin_memory=True)
            self._bytes.copy_(flat, non_blocking=True)
            self._done = torch.cuda.Event()
            self._done.record()
        else:
            self._bytes = flat.cpu()

    @property
    def page_locked(self) -> bool:
        """Whether ``wait``'s arrays lie in page-locked memory (copy what you keep)."""
        return self._done is not None

    def wait(self) -> list[np.ndarray]:
        if self._bytes is None:
            return []
        if self._done is not None:
            self._done.synchronize()
        raw = self._bytes.numpy()
        floats = raw[:4 * self._float_count].view(np.float32)
        bools = raw[4 * self._float_count:].view(np.bool_)
        out, starts = [], {False: 0, True: 0}
        for shape, is_bool in zip(self._shapes, self._is_bool):
            count, start = math.prod(shape), starts[is_bool]
            out.append((bools if is_bool else floats)[start:start + count].reshape(shape))
            starts[is_bool] = start + count
        return out


def _flat_float(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as a float32 vector, detached; the operators only where needed (each is
    host time on a GPU)."""
    return _flat(tensor if tensor.dtype == torch.float32 else tensor.float())


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as a vector, detached (``_flat_float``'s operators only where needed)."""
    return (tensor.detach() if tensor.requires_grad else tensor).reshape(-1)


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    """``parts`` concatenated, without a copy for one part."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def cpu_threads(given: Optional[int], preset: str) -> Optional[int]:
    """The CPU threads of a run (None: the library's default). ``lite`` on one thread: on a
    2-core machine two threads gave 41 fps idle and 1-9 fps while another program kept a core
    busy (their OpenMP barriers wait for a thread that is not running); one gave 32 both
    ways. ``paper``'s larger layers keep more threads busy between barriers."""
    if given is not None:
        return given
    return 1 if preset == "lite" and "OMP_NUM_THREADS" not in os.environ else None


def run_threads(device: str, preset: str, given: Optional[int]) -> Optional[int]:
    """The CPU threads a run tracks with (None on a GPU), recorded with its results: another
    count sums in another order, and a tuned target's 40 steps carry that rounding into its
    masks (car-shadow J&F 0.912 on one thread, 0.917 on two)."""
    if pick_device(device).type != "cpu":
        return None
    return cpu_threads(given, preset) or torch.get_num_threads()


def use_cpu_threads(tracker: SAMNTracker, given: Optional[int]) -> None:
    """For a tracker on a CPU, ``set_cpu_threads`` to ``cpu_threads``' count of its preset,
    where it gives one: what every command that tracks does after building its tracker."""
    threads = cpu_threads(given, tracker.cfg.name) if tracker.device.type == "cpu" else None
    if threads is not None:
        set_cpu_threads(threads)


def set_cpu_threads(threads: int) -> None:
    """Torch's and OpenCV's CPU threads (the crops, warps and the edge snap are OpenCV's)."""
    import cv2

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
