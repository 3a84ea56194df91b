"""Training loop for both stages of the paper, on CPU, one GPU or many (``torchrun``).

A sample is three crops of one object. Frame 0 is memorised with its mask (or the GT
box for box-to-segmentation samples); frame 1 is segmented and memorised with its
*predicted* mask; frame 2 is segmented from both. The loss is taken on frames 1 and 2.

The spatial map the decoder receives at test time is the DCF response clamped to
[0, 1]: a peak of height <= 1 at the target with sigma = ``sigma_factor`` x target
size, plus clutter. Running a DCF per training sample would dominate the step time,
so training draws that map directly: a Gaussian at the true centre (jittered by up
to one cell), a random peak height, and sometimes a weaker distractor peak.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from samn_tracker.backbones import freeze_batchnorm
from samn_tracker.config import PRESETS, ModelConfig, TrackerConfig, preset, weights_mismatch
from samn_tracker.devices import Rank
from samn_tracker.feature_grid import STRIDE, cell_to_pixel, gaussians
from samn_tracker.model.decoder import foreground_probability
from samn_tracker.model.network import SAMNNetwork
from samn_tracker.errors import InputError, SettingError
from samn_tracker.settings import Checked, replace_settings, setting
from samn_tracker.train.curves import plot_training_log
from samn_tracker.train.losses import batch_iou, segmentation_loss
from samn_tracker.train.run_loop import (EpochOrder, RunFiles, StepResult, run_steps, step_seed,
                                         worker_ignores_interrupts)
from samn_tracker.weights import BUILTIN_CHECKPOINTS_DIR, load_checkpoint, save_checkpoint


@dataclass
class TrainConfig(Checked):
    """Everything a training run needs; saved with every checkpoint. Checked like the
    tracker's config: each field declares the values it allows."""

    stage: Literal[1, 2] = 1
    preset: Literal["lite", "paper"] = "lite"
    sources: list[str] = field(default_factory=list)
    source_weights: list[float] = field(default_factory=list)
    out_dir: str = "results/train"
    init_weights: Optional[str] = None
    steps: int = setting(1000, ge=1)
    batch_size: int = setting(4, ge=1)
    lr: float = setting(1e-5, gt=0, le=1)  # Adam moves a weight by about lr a step
    iou_weight: float = setting(1.0, ge=0)
    crop_size: int = setting(384, ge=2 * STRIDE, multiple_of=STRIDE)  # as the tracker's (config.py)
    search_factor: float = setting(4.0, gt=0)
    box_init_fraction: float = setting(0.01, ge=0, le=1)
    # Frames 1-2 are cropped around the true box moved by up to centre_jitter x sqrt(w h) per
    # axis and scaled by exp(N(0, scale_jitter)): where the tracker's previous estimate may be.
    centre_jitter: float = setting(0.25, ge=0)
    scale_jitter: float = setting(0.25, ge=0, le=10)  # wider overflows exp() of a float
    # Fraction of segmented frames whose query value is zeroed in the read-out, so that the
    # decoder must segment from the appearance memory (without it the lite decoder learnt to
    # segment the salient object near the crop centre and hardly reads the memory:
    # docs/training.md, "What the two memories add").
    query_value_dropout: float = setting(0.0, ge=0, le=1)
    # The model's memory keys (ModelConfig.key_source): "backbone" reads by the frozen backbone's
    # features; the learned key heads then go unused.
    key_source: Literal["learned", "backbone"] = "learned"
    # How frames are memorised (ModelConfig.memory_pass): the memory encoder's own backbone (the
    # paper), or "query", the light pass on the query features, trained here end to end
    # (``samn distill`` makes one from a trained network instead: how lite's default was made).
    memory_pass: Literal["backbone", "query"] = "backbone"
    train_backbones: bool = True
    train_backbone_tail: int = setting(0, ge=0)  # last N backbone blocks train anyway (both encoders)
    # DataLoader processes; None: on a GPU the host's cores less two, shared among this node's
    # ranks (at most 16 each: the step, not the data, is the limit there); on a CPU none, since
    # the step already uses the cores (data_workers).
    workers: Optional[int] = setting(None, ge=0)
    checkpoint_every: int = setting(200, ge=1)
    log_every: int = setting(1, ge=1)
    seed: int = setting(0, ge=0, lt=2 ** 63)  # numpy's generators take no negative seed, torch's none past 2**63
    device: str = "auto"
    amp: bool = True
    held_out: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_backbone_tail and (self.stage == 2 or self.train_backbones):
            raise SettingError("train_backbone_tail", self.train_backbone_tail,
                               "0 in stage 2 or with train_backbones=true: it unfreezes the last blocks of "
                               "frozen backbones (stage 1, train_backbones=false)")

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        """The defaults with the file's fields applied; bad JSON or a bad field is an InputError."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"{path}: cannot read a training config: {err}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: a training config is a JSON object of fields, got {type(data).__name__}")
        try:
            return replace_settings(cls(), data)
        except SettingError as err:
            raise err.within(str(path)) from None


def spatial_maps(masks: torch.Tensor, sigma_factor: float, generator: torch.Generator) -> torch.Tensor:
    """Synthetic DCF responses (B, 1, S/16, S/16) for target masks (B, 1, S, S), computed
    for the whole batch on the masks' device (random draws come from ``generator``)."""
    b, _, s, _ = masks.shape
    device = masks.device
    coords = cell_to_pixel(torch.arange(s // STRIDE, dtype=torch.float32, device=device))
    pixels = torch.arange(s, dtype=torch.float32, device=device)
    fg = (masks[:, 0] > 0.5).float()
    cols, rows = fg.amax(1), fg.amax(2)                      # (B, S): any pixel per column / row
    area = fg.sum((1, 2))
    present = area > 0
    cx = (fg.sum(1) * pixels).sum(1) / area.clamp(min=1)
    cy = (fg.sum(2) * pixels).sum(1) / area.clamp(min=1)
    w = _extent(cols, pixels)
    h = _extent(rows, pixels)
    draws = torch.rand(b, 6, generator=generator).to(device)
    jitter = (draws[:, 0:2] * 2 - 1) * STRIDE
    peak = 0.3 + 0.7 * draws[:, 2]
    maps = peak[:, None, None] * _gaussian(coords, cx + jitter[:, 0], cy + jitter[:, 1],
                                           w * sigma_factor, h * sigma_factor)
    distractor = (draws[:, 3] < 0.3).float()
    maps = maps + (0.5 * peak * distractor)[:, None, None] * _gaussian(
        coords, draws[:, 4] * s, draws[:, 5] * s, w * sigma_factor, h * sigma_factor)
    return (maps * present[:, None, None]).clamp(0, 1).unsqueeze(1)


def _extent(occupied: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Width of the occupied span of each row of ``occupied`` (B, S), in pixels."""
    first = torch.where(occupied > 0, pixels, torch.full_like(pixels, float("inf"))).amin(1)
    last = torch.where(occupied > 0, pixels, torch.full_like(pixels, -1.0)).amax(1)
    return (last - first + 1).clamp(min=1)


def _gaussian(coords: torch.Tensor, cx, cy, sx, sy) -> torch.Tensor:
    """(B, n, n) Gaussians on the cell centres ``coords`` (n,) in crop pixels, at least
    half a cell wide, as the tracker's spatial maps are."""
    return gaussians(coords, coords, cx[:, None], cy[:, None],
                     sx.clamp(min=STRIDE / 2)[:, None], sy.clamp(min=STRIDE / 2)[:, None])


class ClipModel(nn.Module):
    """Frames 1 and 2 of (B, 3, 3, S, S) clips, memorising predictions as it goes.

    A module (not a function) so that ``DistributedDataParallel`` can wrap it.
    """

    def __init__(self, net: SAMNNetwork):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor, memory_mask0: torch.Tensor, maps: list[torch.Tensor],
                value_keep: Optional[list[torch.Tensor]] = None) -> list[torch.Tensor]:
        """``value_keep``: per frame, (B,) factors for the query-value half of the read-out."""
        net, size = self.net, images.shape[-1]
        key, value = net.encode_memory(images[:, 0], memory_mask0)
        if net.cfg.key_source == "backbone":  # frame 0's backbone features: one more backbone pass
            key = net.memory_key(key, net.encode_backbone(images[:, 0]))
        keys, values = [key.flatten(2)], [value.flatten(2)]
        outputs = []
        for i, (t, spatial) in enumerate(zip((1, 2), maps)):
            query = net.encode_query(images[:, t])
            readout = net.read(query, torch.cat(keys, 2), torch.cat(values, 2),
                               value_weight=None if value_keep is None else value_keep[i])
            logits = net.decode(readout, query, spatial, size)
            outputs.append(logits)
            if t == 1:
                key, value = net.encode_memory(images[:, t], foreground_probability(logits), query.s16)
                keys.append(net.memory_key(key, query.s16).flatten(2))
                values.append(value.flatten(2))
        return outputs


def configure_trainable(net: SAMNNetwork, cfg: TrainConfig) -> list[nn.Parameter]:
    """Stage 1 trains everything (backbones optional, or only their last
    ``train_backbone_tail`` blocks); stage 2 freezes both encoders."""
    for p in net.parameters():
        p.requires_grad_(True)
    if cfg.stage == 2:
        for module in (net.query_encoder, net.memory_encoder):
            for p in module.parameters():
                p.requires_grad_(False)
    elif not cfg.train_backbones:
        for module in net.backbones():
            for p in module.parameters():
                p.requires_grad_(False)
        for block in backbone_tail(net, cfg.train_backbone_tail):
            for p in block.parameters():
                p.requires_grad_(True)
    freeze_batchnorm(net)
    return [p for p in net.parameters() if p.requires_grad]


def backbone_tail(net: SAMNNetwork, count: int) -> list[nn.Module]:
    """The last ``count`` blocks of the backbones (the memory encoder's too where it has one)."""
    blocks = len(net.query_encoder.backbone.blocks())
    if count > blocks:
        raise SettingError("train_backbone_tail", count,
                           f"at most {blocks}, the blocks of the {net.cfg.backbone} backbone")
    if count == 0:
        return []
    return [block for backbone in net.backbones() for block in backbone.blocks()[-count:]]


def trained_weights(net: SAMNNetwork, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """What a checkpoint of this run holds: everything that trained (the heads, and the
    backbones or their tail when those train too)."""
    if cfg.train_backbones and cfg.stage == 1:
        return net.state_dict()
    tail = {id(block) for block in backbone_tail(net, cfg.train_backbone_tail)}
    prefixes = tuple(f"{name}." for name, module in net.named_modules() if id(module) in tail)
    state = net.state_dict()
    return {**net.trained_state_dict(), **{k: v for k, v in state.items() if k.startswith(prefixes)}}


def setup_distributed(device: torch.device, rank: Rank) -> Rank:
    """Join the process group when ``torchrun`` started several processes."""
    if rank.world <= 1:
        return Rank()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dataclasses.replace(rank, rank=dist.get_rank())


def data_workers(requested: Optional[int], device: torch.device, local_world: int,
                 cores: Optional[int]) -> int:
    """The DataLoader processes of one rank: ``requested``, or when None what keeps a GPU fed
    (measured on an H100: 14 workers at 2-4% of the time waiting for data)."""
    if requested is not None:
        return requested
    if device.type != "cuda":
        return 0
    return max(0, min(16, ((cores or 1) - 2) // max(local_world, 1)))


def collate(samples) -> dict[str, torch.Tensor]:
    return {name: torch.stack([getattr(s, name) for s in samples])
            for name in ("images", "masks", "memory_mask0")}


def train(cfg: TrainConfig, dataset, resume: bool = False, progress: bool = True) -> dict:
    """Run ``cfg.steps`` optimiser steps over ``dataset`` (a ``ClipDataset``); returns a summary."""
    rank = Rank.from_env()
    device = rank.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    ddp = setup_distributed(device, rank)
    torch.manual_seed(cfg.seed)
    tracker_cfg: TrackerConfig = preset(cfg.preset).replace(**{"model.key_source": cfg.key_source,
                                                               "model.memory_pass": cfg.memory_pass})
    net = SAMNNetwork(tracker_cfg.model)
    out = Path(cfg.out_dir)
    last = out / "last.pth"
    step = 0
    optimiser_state = None
    if resume and last.exists():
        ckpt = load_weights(net, last)
        step = ckpt["meta"]["step"]
        optimiser_state = ckpt["meta"].get("optimiser")
    elif cfg.init_weights:
        load_weights(net, Path(cfg.init_weights))
    net.to(device)
    params = configure_trainable(net, cfg)
    optimiser = torch.optim.Adam(params, lr=cfg.lr)
    if optimiser_state is not None:
        try:
            optimiser.load_state_dict(optimiser_state)
        except ValueError:  # other trainable parameters than the saved run (train_backbone_tail)
            print("samn train: the trainable parameters changed since the checkpoint; Adam's "
                  "moments start afresh", file=sys.stderr)
        for group in optimiser.param_groups:  # a resumed run may lower the rate with --set lr=
            group["lr"] = cfg.lr
    model: nn.Module = ClipModel(net)
    if ddp.world > 1:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)

    loader = DataLoader(dataset, batch_size=cfg.batch_size, collate_fn=collate,
                        sampler=EpochOrder(len(dataset), cfg.seed, ddp.rank, ddp.world),
                        num_workers=data_workers(cfg.workers, device, rank.local_world, os.cpu_count()),
                        drop_last=True, worker_init_fn=worker_ignores_interrupts,
                        pin_memory=device.type == "cuda")  # the non_blocking copies below need it
    generator = torch.Generator()
    use_amp = cfg.amp and device.type == "cuda"

    def train_step(batch: dict[str, torch.Tensor], at: int) -> StepResult:
        generator.manual_seed(step_seed(cfg.seed, ddp.rank, at))
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        maps = [spatial_maps(batch["masks"][:, t], tracker_cfg.dcf.sigma_factor, generator) for t in (1, 2)]
        value_keep = None
        if cfg.query_value_dropout > 0:
            value_keep = [(torch.rand(len(batch["images"]), generator=generator)
                           >= cfg.query_value_dropout).float().to(device) for _ in maps]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            outputs = model(batch["images"], batch["memory_mask0"], maps, value_keep)
            loss = sum(segmentation_loss(o, batch["masks"][:, t], cfg.iou_weight)
                       for t, o in zip((1, 2), outputs))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        value, iou = float(loss.detach()), float(batch_iou(outputs[-1].detach(), batch["masks"][:, 2]))
        return StepResult(value, [f"{iou:.4f}"], {"loss": f"{value:.3f}", "iou": f"{iou:.2f}"})

    files = RunFiles(out, ["iou"], save=lambda at: _save(last, net, tracker_cfg, cfg, at, optimiser),
                     plot=lambda log, curve: plot_training_log(log, curve, title=f"samn train: {out}, {cfg.preset}"),
                     writes=ddp.rank == 0)
    try:
        run = run_steps(loader, step, cfg.steps, train_step, files, cfg.checkpoint_every, cfg.log_every,
                        progress)
    finally:
        if ddp.world > 1:
            dist.destroy_process_group()
    return {"steps": run.steps, "losses": run.losses, "checkpoint": str(last), "interrupted": run.interrupted,
            "run_steps": run.run_steps, "seconds": run.seconds, "data_wait_seconds": run.data_wait_seconds}


# the training setting that picks each field a checkpoint's model must fit (config.weights_mismatch)
MODEL_SETTINGS = {"backbone": "preset", "key_dim": "preset", "value_dim": "preset", "decoder_dim": "preset",
                  "spatial_fusion": "preset", "key_source": "key_source", "memory_pass": "memory_pass"}


def load_weights(net: SAMNNetwork, path: Path) -> dict:
    """The checkpoint at ``path``, loaded into ``net``; one trained for another model is
    refused in one line that names the ``--set`` which fits it, not a key list."""
    ckpt = load_checkpoint(path)
    stored = (ckpt.get("config") or {}).get("model")
    if stored:
        stored = {**ModelConfig().to_dict(), **stored}
        diff = {k: theirs for k, (theirs, _) in weights_mismatch(stored, dataclasses.asdict(net.cfg)).items()}
        if diff:
            presets = {preset(name).model.backbone: name for name in PRESETS}
            fixes = sorted({f"--set {MODEL_SETTINGS[k]}={v}" if MODEL_SETTINGS[k] != "preset"
                            else f"--set preset={presets.get(stored['backbone'], '?')}" for k, v in diff.items()})
            raise InputError(f"{path} was trained for another model ({', '.join(f'{k}={v}' for k, v in diff.items())}); "
                             f"to use it: {' '.join(fixes)}")
    net.load_trained(ckpt["state_dict"], path)
    return ckpt


def _save(path: Path, net: SAMNNetwork, tracker_cfg: TrackerConfig, cfg: TrainConfig, step: int,
          optimiser: torch.optim.Optimizer) -> None:
    save_checkpoint(path, trained_weights(net, cfg), tracker_cfg, step=step, train=dataclasses.asdict(cfg),
                    optimiser=optimiser.state_dict())


def export_checkpoint(source: str | Path, dest: str | Path) -> None:
    """Shippable checkpoint: trained weights and config, no optimiser state. A checkpoint
    written into the package (the built-in weights) must come from a run that held out
    the DAVIS 2016 val sequences, which the built-in model is scored on."""
    ckpt = load_checkpoint(source)
    check_builtin_export(dest, (ckpt["meta"].get("train") or {}).get("held_out") or [], str(source))
    config = TrackerConfig.from_dict(ckpt["config"]) if ckpt["config"] else None
    save_checkpoint(dest, ckpt["state_dict"], config, step=ckpt["meta"].get("step"),
                    train=ckpt["meta"].get("train"))


def check_builtin_export(dest: str | Path, held_out: list[str], run: str) -> None:
    """Only a ``run`` that held out the DAVIS 2016 val sequences, which the built-in model is
    scored on, may be exported into the package: checked on export, and before a run with
    ``--export`` takes its first step, not hours later."""
    if Path(dest).resolve().parent == BUILTIN_CHECKPOINTS_DIR.resolve() and "davis2016-val" not in held_out:
        raise InputError(f"{run} does not hold out \"davis2016-val\" (held_out); it cannot "
                         f"become a built-in checkpoint in {BUILTIN_CHECKPOINTS_DIR}")
