"""The speeds issue 10 asks for, each with the conditions it was asked under, judged on a
``samn bench`` run: its JSON and table say for every target whether the run met it, missed
it, or could not judge it and why (another device, thread count or batch, shortened
sequences, or settings that change what is computed)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from samn_tracker.config import SAME_OUTPUT_SETTINGS

# ``--set`` keys that leave a frame's work as the preset's: those, and whether the backbone
# starts from ImageNet (offline GPU runs of ``paper`` need False). A run with any other
# setting (a smaller crop, a shorter memory) does not speak for the preset.
IMPLEMENTATION_SETTINGS = SAME_OUTPUT_SETTINGS | {"model.pretrained_backbone"}


@dataclass(frozen=True)
class SpeedTarget:
    name: str
    tracker: str           # a ``samn bench --trackers`` name
    device: str            # the device type the run must use
    min_fps: float         # frames per second, or with ``batch`` > 1 frames per second in all
    threads: Optional[int] = None  # torch CPU threads the run must use; None: any
    batch: int = 1         # 1: one video at a time; N: ``--batch N`` lockstep

    def judge(self, result: dict) -> dict:
        """This target's row for a ``run_bench`` result."""
        row = {"target": self.name, "tracker": self.tracker, "device": self.device,
               "threads": self.threads, "batch": self.batch, "min_fps": self.min_fps}
        why = self._not_judged(result)
        if why is not None:
            return {**row, "status": "not judged", "why": why}
        entry = result["trackers"][self.tracker]
        fps = entry["speed"]["fps"] if self.batch == 1 else entry["batched"]["frames_per_s"]
        return {**row, "fps": fps, "status": "met" if fps >= self.min_fps else "not met"}

    def _not_judged(self, result: dict) -> Optional[str]:
        meta = result["meta"]
        device, threads = meta["machine"]["device"].split(":")[0], meta["machine"]["torch_threads"]
        entry = result["trackers"].get(self.tracker)
        if entry is None:
            return f"{self.tracker} was not measured"
        if device != self.device:
            return f"the run was on {device}"
        if self.threads is not None and threads != self.threads:
            return f"the run used {threads} CPU threads"
        if self.batch > 1 and entry.get("batched", {}).get("batch") != self.batch:
            return f"the run had no --batch {self.batch}"
        if meta.get("max_frames") is not None:
            return "--max-frames shortened the sequences"
        changed = sorted(set(meta["overrides"]) - IMPLEMENTATION_SETTINGS)
        if changed:
            return f"--set {', '.join(changed)} changes what is computed"
        return None


TARGETS = (
    SpeedTarget("lite on one CPU thread", "samn_lite", "cpu", 28.0, threads=1),
    SpeedTarget("paper on one GPU", "samn_paper", "cuda", 200.0),
    SpeedTarget("lite, 32 videos in lockstep on one GPU", "samn_lite", "cuda", 1000.0, batch=32),
)


def judged_targets(result: dict) -> list[dict]:
    """Every target's row for a ``run_bench`` result (see ``SpeedTarget.judge``)."""
    return [target.judge(result) for target in TARGETS]
