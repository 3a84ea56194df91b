"""Weight files: verified downloads into a cache, and the tracker's checkpoint format.

Downloads happen only when a user asks for weights that are not shipped (ResNet-50
ImageNet for the ``paper`` preset); every file is checked against its sha256 so a
truncated or substituted file is never loaded.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from samn_tracker.atomic import replacing
from samn_tracker.config import TrackerConfig
from samn_tracker.errors import DownloadError, InputError

CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """A downloadable file; ``sha256`` is the full hex digest or a prefix of it
    (torchvision names its files with the first 8+ hex digits of their digest)."""

    name: str
    url: str
    sha256: str


RESNET50_IMAGENET = WeightFile(
    name="resnet50-19c8e357.pth",
    url="https://download.pytorch.org/models/resnet50-19c8e357.pth",
    sha256="19c8e357",
)

BUILTIN_CHECKPOINTS_DIR = Path(__file__).parent / "checkpoints"


def cache_dir() -> Path:
    """``$SAMN_CACHE`` or ``~/.cache/samn_tracker``."""
    return Path(os.environ.get("SAMN_CACHE") or Path.home() / ".cache" / "samn_tracker")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_matches(actual: str, expected: str) -> bool:
    return actual.startswith(expected.lower())


def fetch(spec: WeightFile, directory: Path | None = None, progress: bool = True) -> Path:
    """Path of ``spec`` in ``directory`` (default: the cache), downloaded if absent.

    A cached file with the wrong hash is downloaded again. The download goes to a temp
    file in the same directory and is renamed only once verified, so an interrupted or
    corrupt download never leaves a file that looks valid.
    """
    if not re.fullmatch(r"[0-9a-fA-F]{8,64}", spec.sha256):
        raise InputError(f"sha256 of {spec.name} must be 8 to 64 hex digits, got {spec.sha256!r}")
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / spec.name
    if target.is_file() and _hash_matches(sha256_file(target), spec.sha256):
        return target
    with replacing(target) as tmp:
        with open(tmp, "wb") as out:
            actual = _download(spec, out, target, progress)
        if not _hash_matches(actual, spec.sha256):
            raise InputError(f"download of {spec.url} has sha256 {actual}, "
                             f"expected {spec.sha256}; the file was discarded")
    return target


def _download(spec: WeightFile, out: Any, target: Path, progress: bool) -> str:
    """Stream ``spec.url`` into ``out``; return the sha256 of what was written."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.name,
                      disable=not progress) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(
            f"cannot download {spec.url} ({exc}). Download it by other means and put it at "
            f"{target} (the cache folder is $SAMN_CACHE or ~/.cache/samn_tracker)") from exc
    return digest.hexdigest()


def save_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor],
                    config: TrackerConfig | None = None, **meta: Any) -> None:
    """Write ``{"state_dict", "config", "meta"}`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": state_dict,
               "config": config.to_dict() if config is not None else None,
               "meta": meta}
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def read_torch_file(path: Path, what: str) -> Any:
    """``torch.load`` of tensors only (no pickled code), with errors naming the file."""
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        with warnings.catch_warnings():  # the unpickler's notes on pickle protocols
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text suggests loading with weights_only=False, which runs the file's code
        raise InputError(f"cannot read {what} {path}: not a PyTorch file of tensors only "
                         "(not a PyTorch file at all, or one that holds pickled objects)") from exc
    except Exception as exc:  # torch raises several types for a damaged file
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        raise InputError(f"cannot read {what} {path}: not a PyTorch file, or a damaged one ({reason})") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; a bare state dict is accepted
    too (config None, meta empty)."""
    path = Path(path)
    data = read_torch_file(path, "checkpoint")
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        return {"state_dict": data["state_dict"], "config": data.get("config"),
                "meta": data.get("meta") or {}}
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"state_dict": data, "config": None, "meta": {}}
    raise InputError(f"{path} is not a samn_tracker checkpoint (no state_dict)")


def builtin_checkpoint(preset: str, memory_pass: str = "backbone") -> Path | None:
    """The weights the package ships for a preset, if any: ``checkpoints/<preset>.pth`` for
    the memory encoder's own backbone pass (the paper's), ``<preset>-query.pth`` for the
    memory pass on the query features (``ModelConfig.memory_pass``)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", preset) or preset.startswith("."):
        raise InputError(f"invalid preset name {preset!r}")
    path = BUILTIN_CHECKPOINTS_DIR / (f"{preset}.pth" if memory_pass == "backbone" else f"{preset}-{memory_pass}.pth")
    return path if path.is_file() else None
