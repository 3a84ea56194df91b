"""Memory gauges and machine facts that mean the same thing on CPU and CUDA.

Process memory is read from ``/proc/self/statm`` (current RSS, so a peak can be taken
over a chosen span) with ``resource.getrusage`` as the fallback; GPU memory from the CUDA
caching allocator. Clocks are ``samn_tracker.tracking_loop``'s (synchronised on CUDA).
"""
from __future__ import annotations

import hashlib
import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Optional

import torch

from samn_tracker import __version__

MB = 1024.0 * 1024.0


def current_rss_mb() -> float:
    """Resident set size now; the lifetime peak where /proc is unavailable."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError, IndexError):
        return lifetime_peak_rss_mb()


def lifetime_peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if platform.system() == "Darwin" else peak / 1024.0  # bytes vs KiB


def cuda_allocated_mb(device: torch.device) -> float:
    return torch.cuda.memory_allocated(device) / MB if device.type == "cuda" else 0.0


def reset_cuda_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def cuda_peak_mb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / MB if device.type == "cuda" else 0.0


def machine_description(device: torch.device) -> dict:
    """What a reader needs to compare timings across runs."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "device": str(device),
            "platform": platform.platform()}
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def code_description() -> dict:
    """Which code ran: the package version and, from a git checkout, its commit, with
    ``+changes.<hash>`` when tracked files differ from it (the hash of that difference, so two
    runs of one commit with other edits do not pass for the same code)."""
    return {"version": __version__, "commit": _git_commit(Path(__file__).resolve().parents[2])}


def _git_commit(folder: Path) -> Optional[str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout

    try:
        if Path(git("rev-parse", "--show-toplevel").strip()).resolve() != folder:
            return None  # an installed copy inside some other repository
        commit = git("rev-parse", "--short", "HEAD").strip()
        changes = git("diff", "HEAD", "--no-ext-diff")
    except (OSError, subprocess.SubprocessError):
        return None  # not a checkout (an installed wheel), or no git
    if not changes:
        return commit
    return f"{commit}+changes.{hashlib.sha256(changes.encode()).hexdigest()[:8]}"
