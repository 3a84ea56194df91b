"""The one front door: every adapter (``samn track``, ``samn eval``, ``samn bench``, the
TraX server, the GOT-10k toolkit adapter) builds its tracker here, so a preset, its
``KEY=VALUE`` settings, the weights, the device (this rank's GPU under ``torchrun``), the
precision and the seed mean the same thing on every command.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Union

from samn_tracker.config import PRESETS, TrackerConfig, preset as make_preset
from samn_tracker.errors import InputError
from samn_tracker.settings import parse_overrides

if TYPE_CHECKING:
    from samn_tracker.tracker import SAMNTracker

Overrides = Union[Iterable[str], Mapping[str, object]]


def tracker_config(preset: Union[str, TrackerConfig] = "lite", overrides: Overrides = ()) -> TrackerConfig:
    """The preset (a name or a config) with ``overrides`` (``"KEY=VALUE"`` strings, one such
    string, or a dotted mapping) applied and checked."""
    if not isinstance(preset, (str, TrackerConfig)):
        raise InputError(f"preset must be a name ({', '.join(sorted(PRESETS))}) or a TrackerConfig, got "
                         f"{type(preset).__name__} {preset!r}; settings go in overrides=")
    config = make_preset(preset) if isinstance(preset, str) else preset
    if isinstance(overrides, Mapping):
        changes = overrides
    else:
        items = [overrides] if isinstance(overrides, str) else list(overrides)
        for item in items:
            if not isinstance(item, str):
                raise InputError(f"setting {item!r} is not a 'KEY=VALUE' string: give such strings "
                                 "or a mapping {KEY: value}")
        changes = parse_overrides(items)
    return config.replace(**changes) if changes else config


def build_tracker(preset: Union[str, TrackerConfig] = "lite", weights: Optional[Union[str, Path]] = None,
                  overrides: Overrides = (), device: str = "auto", precision: str = "fp32",
                  seed: int = 0) -> "SAMNTracker":
    """A ready ``SAMNTracker``; bad settings raise ``SettingError`` before anything is built."""
    from samn_tracker.devices import Rank
    from samn_tracker.tracker import SAMNTracker

    config = tracker_config(preset, overrides)
    return SAMNTracker(config, weights=weights, device=Rank.from_env().device(device),
                       seed=seed, precision=precision)
