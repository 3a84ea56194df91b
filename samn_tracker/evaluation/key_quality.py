"""``samn eval keys``: does the appearance memory's read follow the object? No decoder.

At frames t = stride, 2 stride, ... of each DAVIS sequence, the read's attention (query:
frame t; memory: frames 0 and t - gap; every crop around its own ground-truth box, as a
tracker that follows the truth would place it) carries the memory frames' ground-truth
masks, pooled to the stride-16 grid, to frame t. The soft IoU of that carried mask with
frame t's pooled ground truth says how well the keys match the object. Rows:

* ``learned``: the network's key heads (query key; memory encoder's key with the mask);
* ``backbone``: the frozen backbone's features by cosine / ``model.key_temperature``
  (what ``--set model.key_source=backbone`` reads with);
* ``unmoved``: frame t - gap's mask where it was: what no matching at all gives in crops
  that follow the truth (so the crop placement, not the keys, earns this much).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from samn_tracker.command_parser import CommandParser, positive_int
from samn_tracker import build_tracker, regions
from samn_tracker.atomic import write_text
from samn_tracker.config import PRESETS
from samn_tracker.crops import crop_mask, window_around
from samn_tracker.datasets.davis import davis_sequence, frame_files, sequence_names
from samn_tracker.errors import InputError
from samn_tracker.evaluation.options import requested
from samn_tracker.exits import guarded
from samn_tracker.model.appearance_memory import read_memory
from samn_tracker.run_folder import check_writable

ROWS = ("learned", "backbone", "unmoved")


def build_parser() -> CommandParser:
    p = CommandParser(prog="samn eval keys", description=__doc__.split("\n\n")[0], epilog="""examples:
  samn eval keys --root /data/DAVIS --year 2016 --split val --out keys.json
  samn eval keys --root /data/DAVIS --year 2016 --sequences blackswan --set model.key_temperature=0.1""")
    p.add_argument("--root", required=True, help="DAVIS root (JPEGImages/, Annotations/, ImageSets/)")
    p.add_argument("--year", type=int, default=2016, choices=[2016, 2017])
    p.add_argument("--split", default="val")
    p.add_sequences_option("these sequences only, each taken once")
    p.add_argument("--preset", default="lite", choices=sorted(PRESETS))
    p.add_argument("--weights", help="checkpoint (.pth); default: the preset's built-in one")
    p.add_set_option(example="model.key_temperature=0.1")
    p.add_argument("--device", default="auto")
    p.add_argument("--stride", type=positive_int, default=6, help="query every N-th frame (default 6)")
    p.add_argument("--gap", type=positive_int, default=5, help="second memory frame: t - GAP (default 5)")
    p.add_argument("--out", help="write the per-sequence figures to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    return p


def soft_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.minimum(a, b).sum() / torch.maximum(a, b).sum().clamp_min(1e-6))


class KeyProbe:
    """The reads of one network on crops around the ground truth."""

    def __init__(self, tracker):
        self.tracker, self.net = tracker, tracker.net

    def crops(self, images: list[np.ndarray], masks: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Search-region crops around each mask's box, made as the tracker makes them."""
        cfg, frames = self.tracker.cfg, self.tracker.frames
        windows = [window_around(regions.mask_to_box(m), cfg.search_factor, cfg.crop_size) for m in masks]
        x = torch.cat([frames.crop(frames.load(i), w) for i, w in zip(images, windows)])
        m = torch.stack([torch.from_numpy(crop_mask(mask, w)) for mask, w in zip(masks, windows)])
        return x, m[:, None].float().to(self.tracker.device)

    @torch.no_grad()
    def scores(self, images: list[np.ndarray], masks: list[np.ndarray]) -> dict[str, float]:
        """Frames (memory, memory, query) with their masks: each row's soft IoU."""
        x, m = self.crops(images, masks)
        query = self.net.encode_query(x)
        encoded, _ = self.net.encode_memory(x[:2], m[:2], query.s16[:2])
        pooled = F.adaptive_avg_pool2d(m, query.s16.shape[-2:])
        carried = pooled[:2].flatten(1).reshape(1, 1, -1)  # (1, 1, 2 h w)
        truth = pooled[2, 0]

        def carry(query_key: torch.Tensor, memory_keys: torch.Tensor) -> float:
            keys = memory_keys.flatten(2).transpose(0, 1).reshape(1, memory_keys.shape[1], -1)
            return soft_iou(read_memory(query_key[None], keys, carried)[0, 0], truth)

        features = self.net.feature_key(query.s16)
        return {"learned": carry(query.key[2], encoded), "backbone": carry(features[2], features[:2]),
                "unmoved": soft_iou(pooled[1, 0], truth)}


def sequence_scores(probe: KeyProbe, root: Path, name: str, stride: int, gap: int) -> Optional[dict]:
    seq = davis_sequence(root, name)
    if seq.groundtruth is None:
        raise InputError(f"{name}: no annotations under {root}")
    per: dict[str, list[float]] = {row: [] for row in ROWS}
    for t in range(max(stride, gap), len(seq), stride):
        frames = (0, t - gap, t)
        masks = [np.asarray(seq.groundtruth[i]) > 0 for i in frames]
        if any(not m.any() for m in masks):
            continue  # the object is absent from one of them: nothing to carry or to score
        for row, value in probe.scores([seq.image(i) for i in frames], masks).items():
            per[row].append(value)
    if not per["learned"]:
        return None
    return {"queries": len(per["learned"]), **{row: float(np.mean(v)) for row, v in per.items()}}


def check_out(out: Optional[str]) -> None:
    """InputError, before the evaluation, when the ``--out`` JSON file cannot be written."""
    if out is None:
        return
    if Path(out).is_dir():
        raise InputError(f"--out {out} is a folder; give the name of a JSON file")
    check_writable(Path(out).absolute().parent, Path(out))


@guarded("samn eval keys")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    check_out(args.out)
    root = Path(args.root)
    names = requested(args.sequences) or sequence_names(root, args.year, args.split)
    for name in names:  # a misspelt name is named before the network is built
        frame_files(root, name)
    tracker = build_tracker(args.preset, args.weights, args.overrides, args.device)
    probe = KeyProbe(tracker)
    results = {}
    for name in tqdm(names, desc="keys", disable=args.no_progress or None):
        scores = sequence_scores(probe, root, name, args.stride, args.gap)
        if scores is not None:
            results[name] = scores
            print(f"{name}: " + "  ".join(f"{row} {scores[row]:.3f}" for row in ROWS), flush=True)
    if not results:
        raise InputError("no sequence had a query frame with the object in all three frames")
    mean = {row: float(np.mean([r[row] for r in results.values()])) for row in ROWS}
    print("mean soft IoU of the carried masks: " + "  ".join(f"{row} {mean[row]:.3f}" for row in ROWS))
    if args.out:
        write_text(Path(args.out), json.dumps({"sequences": results, "mean": mean,
                                               "temperature": tracker.cfg.model.key_temperature,
                                               "stride": args.stride, "gap": args.gap}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
