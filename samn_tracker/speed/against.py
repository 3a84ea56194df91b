"""``samn bench --against EARLIER``: this run beside an earlier ``bench.json``, tracker by
tracker: how much faster, and whether accuracy stayed where it was (issue 10: every speed
change keeps accuracy, shown by the same run against the previous code).

A speed ratio means something only on the same machine and thread count; an accuracy
change means something only on the same frames, weights, precision and settings. The
comparison says which of these differ instead of refusing, since a reader may compare a
CPU run with a GPU run on purpose (to see what rounding does), and it names the code of
both runs (``meta.code``) where they came from a git checkout.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from samn_tracker.errors import InputError
from samn_tracker.speed.targets import SAME_OUTPUT_SETTINGS
from samn_tracker.speed.trackers import SAMN_PRESETS

# The measures whose change decides the verdict, and those shown beside them.
DECIDING = ("ao", "jf")
SHOWN = ("ao", "sr50", "success_auc", "mean_iou", "jf", "j", "f")
# What the two runs must share for their accuracy to be compared (``--set`` settings apart
# from SAME_OUTPUT_SETTINGS, which are listed instead), and for their speed. ``--precision``
# and ``--set`` change only the SAMN presets: an OpenCV tracker is judged without them.
FRAMES_CONDITIONS = ("sequences", "frames_per_pass", "max_frames")
SAMN_CONDITIONS = ("precision", "overrides")
TRACKER_CONDITIONS = ("preset", "crop_size", "backbone")
SPEED_CONDITIONS = (("cpu", "the CPU"), ("gpu", "the GPU"), ("device", "the device"),
                    ("torch_threads", "the torch thread count"))


def load_earlier(path: Path) -> tuple[dict, Path]:
    """The earlier result: ``path`` itself or the ``bench.json`` in that folder."""
    file = path / "bench.json" if path.is_dir() else path
    try:
        result = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--against {path}: not a samn bench result ({err})") from None
    if not isinstance(result, dict) or "trackers" not in result or "meta" not in result:
        kind = "a --long result" if isinstance(result, dict) and "runs" in result else "not a samn bench result"
        raise InputError(f"--against {file}: {kind}; give the bench.json of a samn bench run without --long")
    return result, file


def compare_runs(now: dict, before: dict, source: Path, tolerance: float) -> dict:
    """Every tracker measured in both runs: fps before and now, their ratio, stage times,
    lockstep frames/s where both ran the same ``--batch``, the accuracy measures and
    per-sequence mean IoU with their changes, and a verdict:
    ``identical`` (every measure equal), ``within tolerance`` (AO and J&F changed by at most
    ``tolerance``), ``changed``, or ``not comparable`` (other frames, weights or settings;
    precision and ``--set`` settings only for the SAMN presets, the trackers they change).
    Settings that change only how the outputs are computed (``SAME_OUTPUT_SETTINGS``: an
    A/B of an implementation) are listed as ``settings_differ`` and do not stop the
    comparison."""
    work = [{**meta, "overrides": _without_same_output(meta.get("overrides") or {})}
            for meta in (now["meta"], before["meta"])]
    frames_differ = _differences(*work, FRAMES_CONDITIONS)
    samn_differ = _differences(*work, SAMN_CONDITIONS)
    speed_differ = [what for key, what in SPEED_CONDITIONS
                    if now["meta"]["machine"].get(key) != before["meta"]["machine"].get(key)]
    if frames_differ:  # a frame of another video costs otherwise (its target's size, the memory's fill)
        speed_differ.append(f"the frames timed ({', '.join(frames_differ)})")
    trackers = {}
    for name in [name for name in now["trackers"] if name in before["trackers"]]:
        a, b = now["trackers"][name], before["trackers"][name]
        differ = frames_differ + (samn_differ if name in SAMN_PRESETS else []) \
            + _differences(a["details"], b["details"], TRACKER_CONDITIONS)
        if _weights_differ(a["details"], b["details"]):
            differ.append("weights")
        trackers[name] = {
            "fps": {"before": b["speed"]["fps"], "now": a["speed"]["fps"],
                    "ratio": a["speed"]["fps"] / b["speed"]["fps"]},
            "stages_ms": {stage: {"before": b["speed"]["stages_ms"].get(stage), "now": ms}
                          for stage, ms in a["speed"]["stages_ms"].items()},
            "accuracy": {key: _change(b["accuracy"].get(key), a["accuracy"].get(key)) for key in SHOWN},
            "sequences": {seq: _change(b["accuracy"]["sequences"].get(seq, {}).get("mean_iou"), entry["mean_iou"])
                          for seq, entry in a["accuracy"]["sequences"].items()},
            "conditions_differ": differ,
        }
        lockstep = [e.get("batched") for e in (b, a)]
        if all(lockstep) and lockstep[0]["batch"] == lockstep[1]["batch"]:  # the same --batch in both
            trackers[name]["lockstep"] = {"batch": lockstep[1]["batch"],
                                          **_rates(lockstep[0]["frames_per_s"], lockstep[1]["frames_per_s"]),
                                          "with_starts": _rates(lockstep[0].get("frames_per_s_with_init"),
                                                                lockstep[1].get("frames_per_s_with_init"))}
        trackers[name]["verdict"] = _verdict(trackers[name], tolerance)
    return {"source": str(source), "date": before["meta"].get("date"), "code": before["meta"].get("code"),
            "tolerance": tolerance, "speed_conditions_differ": speed_differ,
            "settings_differ": _same_output_changes(now["meta"].get("overrides") or {},
                                                    before["meta"].get("overrides") or {}),
            "trackers": trackers,
            "only_now": sorted(now["trackers"].keys() - before["trackers"].keys()),
            "only_before": sorted(before["trackers"].keys() - now["trackers"].keys())}


def _differences(now: dict, before: dict, keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if now.get(key) != before.get(key)]


def _without_same_output(overrides: dict) -> dict:
    return {key: value for key, value in overrides.items() if key not in SAME_OUTPUT_SETTINGS}


def _same_output_changes(now: dict, before: dict) -> dict:
    """{key: {"before", "now"}} for each SAME_OUTPUT_SETTINGS key set otherwise in the two
    runs (None: not set, the preset's own)."""
    return {key: {"before": before.get(key), "now": now.get(key)}
            for key in sorted(SAME_OUTPUT_SETTINGS & (now.keys() | before.keys())) if now.get(key) != before.get(key)}


def _weights_differ(now: dict, before: dict) -> bool:
    """By the checkpoints' content where both runs recorded it (two checkouts' copies of one
    file are the same weights), else by their file names (results written before the hash)."""
    if "weights_sha256" in now and "weights_sha256" in before:
        return now["weights_sha256"] != before["weights_sha256"]
    names = [None if d.get("weights") is None else Path(d["weights"]).name for d in (now, before)]
    return names[0] != names[1]


def _rates(before: Optional[float], now: Optional[float]) -> dict:
    """Two frame rates and their ratio (None where a run lacks the rate: older results)."""
    return {"before": before, "now": now, "ratio": None if before is None or now is None else now / before}


def _change(before: Optional[float], now: Optional[float]) -> dict:
    change = None if before is None or now is None else now - before
    return {"before": before, "now": now, "change": change}


def _verdict(entry: dict, tolerance: float) -> str:
    if entry["conditions_differ"]:
        return "not comparable"
    measures = [*entry["accuracy"].values(), *entry["sequences"].values()]
    if all(m["before"] == m["now"] for m in measures):
        return "identical"
    deciding = [entry["accuracy"][key]["change"] for key in DECIDING]
    if all(change is None or abs(change) <= tolerance for change in deciding):
        return "within tolerance"
    return "changed"
