"""``samn train``: run a training stage from a JSON config, with overrides and resume.

Single process: ``samn train --config lite_cpu --data-root ../shared/data`` (a folder that
holds ``davis16/``, the layout of the project's shared data). Several GPUs / nodes:
``torchrun --nproc_per_node 8 -m samn_tracker.train.cli --config paper_stage1``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from samn_tracker.command_parser import CommandParser
from samn_tracker.errors import InputError
from samn_tracker.devices import Rank
from samn_tracker.exits import guarded, interrupt_status
from samn_tracker.settings import parse_overrides
from samn_tracker.train.sources import __doc__ as SOURCES_HELP
from samn_tracker.train.held_out import held_out_names
from samn_tracker.train.run_loop import RESUMABLE, check_out_dir, check_resumed_settings
from samn_tracker.train.trainer import TrainConfig, check_builtin_export, export_checkpoint, train

CONFIGS = Path(__file__).parent / "configs"


def resolve_config(name: str) -> Path:
    """A path, or the name of a config shipped in samn_tracker/train/configs."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIGS / f"{name}.json"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in CONFIGS.glob("*.json"))
    raise InputError(f"training config {name!r} is neither a file nor one of {known}")


def build_parser() -> CommandParser:
    p = CommandParser(prog="samn train", description=__doc__ + "\nSources:\n" + SOURCES_HELP, epilog="""examples:
  samn train --config lite_cpu --data-root ../shared/data
  samn train --config lite_davis16 --data-root /data/davis16_full --export lite.pth
  samn train --config lite_davis16 --data-root /data/davis16_full --resume
  samn train --config lite_davis16 --data-root /data/davis16_full --resume --set lr=3e-5 steps=9000
  samn train --config paper_stage1 --data-root /data --set device=cuda""")
    p.add_argument("--config", required=True, help="JSON file or shipped config name")
    p.add_set_option(dest="set", example='steps=50 sources=\'["davis:DAVIS:2017"]\'')
    add_run_options(p, TrainConfig().to_dict())
    return p


def add_run_options(p: CommandParser, settings: dict) -> None:
    """The options of a run over training clips (``samn train``, ``samn distill``), whose
    ``settings`` say which RESUMABLE ones the command has."""
    resumable = ", ".join(key for key in RESUMABLE if key in settings)
    p.add_argument("--data-root", type=Path,
                   help="folder that relative source paths are taken from (default: the cwd)")
    p.add_argument("--resume", action="store_true",
                   help=f"continue from OUT_DIR/last.pth; of the settings, only {resumable} may change")
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: go on although other settings changed (a fine-tune from the checkpoint)")
    p.add_argument("--export", type=Path, help="write a shippable checkpoint (no optimiser) here at the end")
    p.add_argument("--samples", type=int, default=100_000, help="clips drawn per epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the log is written all the same)")


def check_run_options(args: argparse.Namespace, settings: dict, saved: Callable[[dict], Optional[dict]]) -> None:
    """What a run's options could get wrong, found before the sources are read and a step
    is taken: clips per epoch, where the export goes (into the package only with val held
    out), a device that is not there, a fresh run into another run's folder, a resume with
    other ``settings`` than those ``saved(meta)`` reads from its checkpoint."""
    if args.allow_changes and not args.resume:
        raise InputError("--allow-changes applies to --resume only")
    if args.samples < 1:
        raise InputError(f"--samples {args.samples}: clips drawn per epoch must be at least 1")
    if args.export is not None and args.export.is_dir():
        raise InputError(f"--export {args.export} is a folder; give the checkpoint file to write, "
                         f"e.g. {args.export / 'lite.pth'}")
    if args.export is not None:
        check_builtin_export(args.export, settings["held_out"], f"the run into {settings['out_dir']}")
    Rank.from_env().device(settings["device"])  # a GPU not there: one line now, not after the sources
    out = Path(settings["out_dir"])
    check_out_dir(out, args.resume)
    if args.resume:
        check_resumed_settings(out, settings, saved, args.allow_changes)


def clip_dataset(specs: Sequence[str], weights: Sequence[float], held_out: Sequence[str],
                 data_root: Optional[Path], samples: int, seed: int, **cropping):
    """The ``ClipDataset`` of source specs, refusing the named held-out sets."""
    from samn_tracker.train.sampling import ClipDataset
    from samn_tracker.train.sources import build_source

    if not specs:
        raise InputError("no training sources: set `sources` in the config or with --set")
    names = held_out_names(held_out)
    sources = [build_source(s, data_root, names) for s in specs]
    return ClipDataset(sources, weights or None, length=samples, seed=seed, **cropping)


@guarded("samn train", on_interrupt="before training started")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = TrainConfig.from_json(resolve_config(args.config)).replace(**parse_overrides(args.set))
    check_run_options(args, cfg.to_dict(), lambda meta: meta.get("train"))
    dataset = clip_dataset(cfg.sources, cfg.source_weights, cfg.held_out, args.data_root, args.samples,
                           cfg.seed, crop_size=cfg.crop_size, search_factor=cfg.search_factor,
                           box_init_prob=cfg.box_init_fraction, centre_jitter=cfg.centre_jitter,
                           scale_jitter=cfg.scale_jitter)
    summary = train(cfg, dataset, resume=args.resume, progress=not args.no_progress)
    return end_of_run(summary, args.export, speed=True)


def end_of_run(summary: dict, export: Optional[Path], speed: bool = False) -> int:
    """How a run over training clips ends (``samn train``, ``samn distill``): with ``speed``
    the speed line, the export if asked for, then an interruption as one line (exit 130,
    143 for SIGTERM) or the last loss (exit 0). Under torchrun only rank 0, which wrote the
    checkpoint, says so and exports; the other ranks end with the same status, silently."""
    stopped = summary["interrupted"]  # KeyboardInterrupt, Terminated (SIGTERM) or None
    if Rank.from_env().rank != 0:
        return interrupt_status(stopped) if stopped else 0
    if speed and summary["run_steps"]:
        print(speed_line(summary))
    if export:
        export_checkpoint(summary["checkpoint"], export)
    if stopped:
        raise stopped(f"at step {summary['steps']}; saved {summary['checkpoint']} (continue with --resume)")
    losses = summary["losses"]
    if losses:
        print(f"{summary['steps']} steps, last loss {losses[-1]:.4f} -> {summary['checkpoint']}")
    return 0


def speed_line(summary: dict) -> str:
    """How fast this run went, and how much of it the loop waited for the data workers
    (a large share means more ``workers``, not a faster device, would help)."""
    steps, seconds = summary["run_steps"], summary["seconds"]
    share = summary["data_wait_seconds"] / seconds if seconds > 0 else 0.0
    return (f"this run: {steps} steps in {seconds:.1f} s, {steps / max(seconds, 1e-9):.2f} steps/s, "
            f"{100 * share:.0f}% of it waiting for data")


if __name__ == "__main__":
    sys.exit(main())
