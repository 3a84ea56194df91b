"""``samn distill``: train the query-reuse memory pass (``model.memory_pass="query"``) of a
trained network from its own memory encoder.

The teacher is a trained network whose memory encoder runs a backbone of its own over
the frame and its mask. The student (``QueryReuseMemoryEncoder``) gets the teacher's query
features of the same crop and the mask, and learns to give the teacher's stride-16
features, keys and values; everything else (query encoder, decoder) is the teacher's, so
the result is a complete checkpoint. Crops come from the training sources of ``samn
train``: per clip, frame 0 with its memory mask (the ground truth or its filled box, as
first frames are memorised) and frames 1-2 with their masks softened, grown or shrunk, as
the tracker memorises its own probabilities.

    samn distill --data-root /data/davis16_full --set steps=1200 --export lite_query.pth
    (--data-root: the folder that holds DAVIS/, the full DAVIS 2016 release; docs/training.md)
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from samn_tracker.command_parser import CommandParser
from samn_tracker.config import TrackerConfig, preset
from samn_tracker.devices import pick_device
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.model.encoders import QueryReuseMemoryEncoder
from samn_tracker.model.network import SAMNNetwork
from samn_tracker.settings import Checked, parse_overrides, setting
from samn_tracker.train.curves import plot_training_log
from samn_tracker.train.cli import add_run_options, check_run_options, clip_dataset, end_of_run
from samn_tracker.train.run_loop import (EpochOrder, RunFiles, StepResult, run_steps, step_seed,
                                         worker_ignores_interrupts)
from samn_tracker.train.trainer import collate
from samn_tracker.weights import builtin_checkpoint, load_checkpoint, save_checkpoint

# What the student matches, each error relative to the teacher output's variance.
TARGETS = ("features", "key", "value")


@dataclass
class DistillConfig(Checked):
    """A distillation run; saved with its checkpoints."""

    preset: Literal["lite", "paper"] = "lite"
    teacher: Optional[str] = None  # a checkpoint with memory_pass="backbone"; None: the preset's built-in one
    sources: list[str] = field(default_factory=lambda: [
        "davis:DAVIS:2016:train:3-20", "davis-stills:DAVIS:2016:train", "davis-paste:DAVIS:2016:train:20000"])
    source_weights: list[float] = field(default_factory=lambda: [0.4, 0.2, 0.4])
    held_out: list[str] = field(default_factory=lambda: ["davis2016-val"])
    out_dir: str = "results/distill/lite"
    steps: int = setting(2000, ge=1)
    batch_size: int = setting(8, ge=1)  # clips; three crops each
    lr: float = setting(1e-3, gt=0, le=1)
    soft_fraction: float = setting(0.8, ge=0, le=1)  # frames 1-2 whose mask is softened
    box_init_fraction: float = setting(0.1, ge=0, le=1)  # clips whose frame 0 is memorised with its box
    checkpoint_every: int = setting(100, ge=1)
    seed: int = setting(0, ge=0, lt=2 ** 63)  # as TrainConfig.seed
    device: str = "auto"


def soften(masks: torch.Tensor, generator: torch.Generator, fraction: float) -> torch.Tensor:
    """Binary (B, 1, S, S) masks made to look like predicted probabilities: a ``fraction``
    of them grown or shrunk by up to 4 pixels and blurred over up to 9 pixels."""
    out = masks.clone()
    for i in range(len(masks)):
        draws = torch.rand(3, generator=generator).tolist()
        if draws[0] >= fraction:
            continue
        m = masks[i:i + 1]
        radius = int(draws[1] * 5)
        if radius:
            grow = torch.rand(1, generator=generator).item() < 0.5
            pooled = F.max_pool2d(m if grow else 1 - m, 2 * radius + 1, stride=1, padding=radius)
            m = pooled if grow else 1 - pooled
        blur = 1 + 2 * int(draws[2] * 5)
        out[i:i + 1] = F.avg_pool2d(m, blur, stride=1, padding=blur // 2, count_include_pad=False)
    return out


def relative_errors(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean squared error over the teacher's variance, per output (0: exact, 1: its mean)."""
    return {name: F.mse_loss(student[name], teacher[name]) / teacher[name].var().clamp_min(1e-8)
            for name in TARGETS}


class Distiller:
    """A prepared teacher network and the student memory pass it teaches."""

    def __init__(self, cfg: DistillConfig, device: torch.device):
        path = Path(cfg.teacher) if cfg.teacher else builtin_checkpoint(cfg.preset, "backbone")
        if path is None:
            raise InputError(f"preset {cfg.preset!r} has no built-in weights: name a trained teacher")
        ckpt = load_checkpoint(path)
        tracker_cfg = TrackerConfig.from_dict(ckpt["config"]) if ckpt["config"] else preset(cfg.preset)
        if tracker_cfg.model.memory_pass != "backbone":
            raise InputError(f"teacher {path} has memory_pass={tracker_cfg.model.memory_pass!r}; "
                             "distillation needs one with its own memory backbone")
        self.teacher_path, self.teacher_state = path, ckpt["state_dict"]
        self.tracker_cfg = tracker_cfg.replace(**{"model.memory_pass": "query"})
        self.teacher = SAMNNetwork(tracker_cfg.model)
        self.teacher.load_trained(ckpt["state_dict"], path)
        self.teacher.eval().to(device).prepare_for_inference()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        model = tracker_cfg.model
        self.student = QueryReuseMemoryEncoder(self.teacher.query_encoder.backbone.channels["s16"],
                                               model.key_dim, model.value_dim).to(device)
        # Start from the teacher's heads on the unmasked features: the residual begins at zero.
        self.student.key.load_state_dict(self.teacher.memory_encoder.key.state_dict())
        self.student.value.load_state_dict(self.teacher.memory_encoder.value.state_dict())
        torch.nn.init.zeros_(self.student.fuse[-1].weight)
        torch.nn.init.zeros_(self.student.fuse[-1].bias)

    @torch.no_grad()
    def targets(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The query features of the crops, and the teacher's memory outputs for them."""
        net = self.teacher
        x = net.normalise(images).contiguous(memory_format=torch.channels_last)
        s16 = net.query_encoder.backbone(x)["s16"]
        encoder = net.memory_encoder
        features = encoder.features(x, masks)
        return s16, {"features": features, "key": encoder.key(features), "value": encoder.value(features)}

    def outputs(self, masks: torch.Tensor, s16: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.student.features(masks, s16)
        return {"features": features, "key": self.student.key(features), "value": self.student.value(features)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The teacher's trained weights with the student as memory encoder."""
        kept = {k: v for k, v in self.teacher_state.items() if not k.startswith("memory_encoder.")}
        return {**kept, **{f"memory_encoder.{k}": v.detach().cpu() for k, v in self.student.state_dict().items()}}


def crops_of(batch: dict[str, torch.Tensor], generator: torch.Generator,
             soft_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(3B, 3, S, S) crops and the masks they are memorised with."""
    images = batch["images"].flatten(0, 1)
    later = soften(batch["masks"][:, 1:].flatten(0, 1), generator, soft_fraction)
    masks = torch.cat([batch["memory_mask0"][:, None], later.unflatten(0, (-1, 2))], dim=1)
    return images, masks.flatten(0, 1)


def distill(cfg: DistillConfig, dataset, resume: bool = False, progress: bool = True) -> dict:
    """Run ``cfg.steps`` optimiser steps; the checkpoint at ``out_dir/last.pth`` is a
    complete tracker checkpoint at every save."""
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    distiller = Distiller(cfg, device)
    optimiser = torch.optim.Adam(distiller.student.parameters(), lr=cfg.lr)
    out = Path(cfg.out_dir)
    last = out / "last.pth"
    step = 0
    if resume and last.exists():
        ckpt = load_checkpoint(last)
        distiller.student.load_state_dict({k.removeprefix("memory_encoder."): v for k, v in ckpt["state_dict"].items()
                                           if k.startswith("memory_encoder.")})
        optimiser.load_state_dict(ckpt["meta"]["optimiser"])
        for group in optimiser.param_groups:  # a resumed run may lower the rate with --set lr=
            group["lr"] = cfg.lr
        step = ckpt["meta"]["step"]

    def save(at: int) -> None:
        save_checkpoint(last, distiller.state_dict(), distiller.tracker_cfg, step=at,
                        train={"distill": dataclasses.asdict(cfg), "held_out": cfg.held_out,
                               "teacher": str(distiller.teacher_path)},
                        optimiser=optimiser.state_dict())

    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=EpochOrder(len(dataset), cfg.seed),
                        collate_fn=collate, num_workers=1, drop_last=True, worker_init_fn=worker_ignores_interrupts)
    generator = torch.Generator()

    def train_step(batch: dict[str, torch.Tensor], at: int) -> StepResult:
        generator.manual_seed(step_seed(cfg.seed, 0, at))
        images, masks = crops_of(batch, generator, cfg.soft_fraction)
        masks = masks.to(device)
        s16, teacher = distiller.targets(images.to(device), masks)
        errors = relative_errors(distiller.outputs(masks, s16), teacher)
        loss = sum(errors.values())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        values = {name: float(e.detach()) for name, e in errors.items()}
        return StepResult(float(loss.detach()), [f"{v:.5f}" for v in values.values()],
                          {name: f"{v:.3f}" for name, v in values.items()})

    def plot(log: Path, curve: Path) -> None:
        plot_training_log(log, curve, title=f"samn distill: {out}, the light memory pass of {cfg.preset}",
                          panels=[(name, f"{name}: error / teacher variance", True) for name in TARGETS])

    run = run_steps(loader, step, cfg.steps, train_step, RunFiles(out, TARGETS, save, plot), cfg.checkpoint_every,
                    progress=progress)
    return {"steps": run.steps, "losses": run.losses, "checkpoint": str(last), "interrupted": run.interrupted}


def build_parser() -> CommandParser:
    defaults = "\n".join(f"  {key} = {value!r}" for key, value in DistillConfig().to_dict().items())
    p = CommandParser(prog="samn distill", description=__doc__,
                      epilog="examples:\n"
                             "  samn distill --data-root /data/davis16_full --set steps=1200 --export lite_query.pth\n"
                             "  samn distill --data-root /data/davis16_full --resume\n\n"
                             f"settings (--set KEY=VALUE) and their defaults:\n{defaults}")
    p.add_set_option(dest="set", example="steps=500 teacher=run/last.pth")
    add_run_options(p, DistillConfig().to_dict())
    return p


@guarded("samn distill", on_interrupt="before distillation started")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = DistillConfig().replace(**parse_overrides(args.set))
    check_run_options(args, cfg.to_dict(), lambda meta: (meta.get("train") or {}).get("distill"))
    crop = preset(cfg.preset)
    dataset = clip_dataset(cfg.sources, cfg.source_weights, cfg.held_out, args.data_root, args.samples,
                           cfg.seed, crop_size=crop.crop_size, search_factor=crop.search_factor,
                           box_init_prob=cfg.box_init_fraction)
    return end_of_run(distill(cfg, dataset, resume=args.resume, progress=not args.no_progress), args.export)


if __name__ == "__main__":
    sys.exit(main())
