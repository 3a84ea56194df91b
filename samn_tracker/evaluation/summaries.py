"""The small JSON summary every scored run leaves under ``<out>/.../summaries/``: what
``samn report`` reads to put several trackers side by side."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Optional

from samn_tracker.datasets.groundtruth import read_numbers
from samn_tracker.errors import InputError

BENCHMARKS = ("got10k", "trackingnet", "lasot", "otb", "davis2016", "davis2017")
REQUIRED = ("benchmark", "split", "tracker", "scores")  # the fields a summary typed by hand needs
_DAVIS_SCORES = ("J&F", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "FPS")
# The score names each benchmark's summaries use: a report makes a column of every name, so
# a name typed by hand with a typo ("A0") would be a column of its own beside an empty AO.
SCORES = {"got10k": ("AO", "SR0.5", "SR0.75", "FPS"),
          "trackingnet": ("Success", "Precision", "Norm. Precision", "FPS"),
          "lasot": ("Success", "Precision", "Norm. Precision", "FPS"),
          "otb": ("Success", "Precision", "FPS"),
          "davis2016": _DAVIS_SCORES, "davis2017": _DAVIS_SCORES}
CURVES = ("success", "precision", "norm_precision")  # each with its x values in "<name>_x"
PERCENT = ("trackingnet",)  # scores in 0..100 as its server gives them; the others in 0..1


_NUMBER_FIELDS = ("scores", "curves", "per_object", "per_attribute")


def _leaves(value, change: Callable):
    """``value`` (nested dicts and lists) with ``change`` applied to each leaf."""
    if isinstance(value, dict):
        return {key: _leaves(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_leaves(item, change) for item in value]
    return change(value)


def _null(value):
    """A non-finite float as None, for strict JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _nan(value):
    """The inverse of ``_null``."""
    return math.nan if value is None else value


def fps_score(fps: Optional[float]) -> dict[str, float]:
    """``{"FPS": fps}``, or nothing when no time files were there (a zip, results made
    elsewhere): the report then shows ``-``, not a made-up number."""
    return {} if fps is None else {"FPS": fps}


def frames_per_second(time_files: Iterable[Path]) -> Optional[float]:
    """Frames over seconds of the time files that exist (seconds per frame, one per line);
    None where none does (results made elsewhere)."""
    seconds = frames = 0.0
    for time_file in time_files:
        if time_file.is_file():
            times = read_numbers(time_file)
            seconds, frames = seconds + float(times.sum()), frames + times.size
    return frames / seconds if seconds > 0 else None


def fps_text(fps: Optional[float]) -> str:
    return "-" if fps is None else f"{fps:.1f}"


@dataclass
class Summary:
    """Scores of one tracker on one benchmark split, in display order. ``sequences``: the
    names scored (empty in summaries written before they were recorded, and in published
    numbers typed in by hand), so that a report can say when two rows were scored on
    different sequences. ``per_object``: DAVIS's J&F of each object (``<sequence>_<k>``, as
    the official per-sequence CSV names it), for the report's plot of where a tracker fails;
    ``per_attribute``: LaSOT's and OTB's success AUC over the sequences with each attribute.
    ``split_size``: how many sequences the whole split has, where the run knew, so that a
    report can say a row was scored on part of it (``--sequences``)."""

    benchmark: str
    split: str
    tracker: str
    scores: dict[str, float]
    curves: dict[str, list[float]] = field(default_factory=dict)  # e.g. "success" over "success_x"
    sequences: list[str] = field(default_factory=list)
    per_object: dict[str, float] = field(default_factory=dict)
    per_attribute: dict[str, float] = field(default_factory=dict)
    split_size: Optional[int] = None

    def save(self, path: Path) -> None:
        from samn_tracker.atomic import write_text

        # a number that is not one (GOT-10k's AO over a NaN truth row) as JSON's null, not
        # Python's NaN token, which strict JSON readers (jq, browsers) refuse
        write_text(Path(path), json.dumps(_leaves(asdict(self), _null), indent=2, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Summary":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"not a benchmark summary: {path} ({err})") from None
        if not isinstance(data, dict):
            raise InputError(f"not a benchmark summary: {path} (a JSON object is expected)")
        known = {f.name for f in fields(cls)}
        if "meta" in data and ("trackers" in data or "runs" in data):  # bench.json, or long.json of --long
            raise InputError(f"not a benchmark summary: {path} is a samn bench result; "
                             f"its report is `samn report bench {path}`")
        unknown = sorted(data.keys() - known)
        missing = [key for key in REQUIRED if key not in data]
        problems = ([f"fields a summary does not have: {', '.join(unknown)}"] if unknown else []) + \
                   ([f"missing: {', '.join(missing)}"] if missing else [])
        if problems:
            raise InputError(f"not a benchmark summary: {path} ({'; '.join(problems)})")
        for name in _NUMBER_FIELDS:  # null: a number that is not one (``save``)
            if isinstance(data.get(name), dict):
                data[name] = _leaves(data[name], _nan)
        summary = cls(**data)
        if summary.benchmark not in BENCHMARKS:
            raise InputError(f"not a benchmark summary: {path} (unknown benchmark {summary.benchmark!r}; "
                             f"one of {', '.join(BENCHMARKS)})")
        problem = summary._problem()
        if problem:
            raise InputError(f"not a benchmark summary: {path} ({problem})")
        return summary

    def _problem(self) -> str:
        """What is wrong with fields a report reads, or ''."""
        if not all(isinstance(v, str) and v for v in (self.split, self.tracker)):
            return "split and tracker must be non-empty strings"
        if not isinstance(self.scores, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.scores.values()):
            return "scores must map names to numbers"
        if not isinstance(self.curves, dict) or not all(
                isinstance(c, list) and all(isinstance(v, (int, float)) for v in c) for c in self.curves.values()):
            return "curves must map names to lists of numbers"
        unknown = [f"{what} {', '.join(sorted(names - set(known)))} (known: {', '.join(known)})"
                   for what, names, known in (("scores", self.scores.keys(), SCORES[self.benchmark]),
                                              ("curves", self.curves.keys(),
                                               tuple(n for c in CURVES for n in (c, f"{c}_x"))))
                   if names - set(known)]
        if unknown:
            return f"unknown {' and '.join(unknown)}"
        top = 100.0 if self.benchmark in PERCENT else 1.0
        outside = [f"{name} {value}" for name, value in self.scores.items() if name != "FPS" and value == value
                   and not (-top if name.endswith("Decay") else 0.0) <= value <= top]
        if outside:  # 81.2 typed for 0.812 would show as 8120.0
            return (f"{', '.join(outside)} outside 0..{top:g}: {self.benchmark} scores are "
                    + ("percentages" if top > 1 else "fractions (0.812, not 81.2)"))
        for curve in CURVES:
            if curve in self.curves and len(self.curves[curve]) != len(self.curves.get(f"{curve}_x", [])):
                return f"the {curve} curve and {curve}_x differ in length"
        if not isinstance(self.sequences, list) or not all(isinstance(n, str) for n in self.sequences):
            return "sequences must be a list of names"
        if self.split_size is not None and (type(self.split_size) is not int or self.split_size < len(self.sequences)):
            return f"split_size must be a whole number of at least the {len(self.sequences)} sequences scored"
        for name in ("per_object", "per_attribute"):
            scores = getattr(self, name)
            if not isinstance(scores, dict) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores.values()):
                return f"{name} must map names to numbers"
        return ""


def summary_path(split_dir: Path, tracker: str) -> Path:
    return Path(split_dir) / "summaries" / f"{tracker}.json"
