"""``samn report``: every table and plot behind one command.

``samn report vot ...`` reads VOT toolkit analyses (``reports.vot``), ``samn report bench
...`` a ``samn bench`` result (``reports.speed``); anything else is the GOT-10k /
TrackingNet / DAVIS report over benchmark summaries (``reports.evaluation``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from samn_tracker.errors import InputError
from samn_tracker.exits import guarded

# What the bench report reads from every `samn bench` result, as key -> nested spec or the
# allowed types (``object``: present, any value). Sections that older results lack are
# read only where present and are not checked.
NUMBER = (int, float)
OPTIONAL = (int, float, type(None))
MACHINE = {"device": str, "torch": str, "torch_threads": int, "cpu": object, "cpu_count": object}
BENCH = {"meta": {"date": str, "machine": MACHINE, "sequences": list, "frames_per_pass": int, "repeat": int,
                  "warmup": int, "precision": str},
         "trackers": dict}
TRACKER = {"details": dict,
           "speed": {"fps": NUMBER, "fps_min": NUMBER, "fps_max": NUMBER,
                     "ms_per_frame": {"mean": OPTIONAL, "p90": OPTIONAL}, "init_ms": OPTIONAL,
                     "stages_ms": dict, "rss_peak_mb": OPTIONAL, "cuda_peak_mb": OPTIONAL, "lost_frames": object},
           "accuracy": {"ao": NUMBER, "sr50": OPTIONAL, "success_auc": OPTIONAL, "mean_iou": OPTIONAL,
                        "jf": OPTIONAL, "j": OPTIONAL, "f": OPTIONAL, "sequences": dict}}
SEQUENCE = {"mean_iou": OPTIONAL}
LONG = {"meta": {"date": str, "machine": MACHINE, "tracker": str, "sequence": str, "frames": int},
        "windows": {"early": list, "late": list}, "runs": {"cap": dict},
        "claim": {"text": str, "holds": (bool, type(None)), "ratio": NUMBER}}  # null: not judged
RUN = {"memory_max_entries": (int, type(None)), "early": {"median_ms": OPTIONAL}, "late": {"median_ms": OPTIONAL},
       "late_over_early": OPTIONAL, "rss_mb": {"early": OPTIONAL, "late": OPTIONAL}, "memory_entries_last": int,
       "per_frame": {"frame_ms": list, "cuda_mb": list, "rss_mb": list}}
KINDS_OF_VALUE = {NUMBER: "a number", OPTIONAL: "a number or null", str: "text", int: "an integer",
                  list: "a list", dict: "an object", bool: "true or false", (int, type(None)): "an integer or null",
                  (bool, type(None)): "true, false or null"}


@guarded("samn report")
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["vot"]:
        from samn_tracker.reports.vot import main as vot_report
        return vot_report(argv[1:])
    if argv[:1] == ["bench"]:
        return bench(argv[1:])
    from samn_tracker.reports.evaluation import main as evaluation_report
    return evaluation_report(argv)


@guarded("samn report bench")
def bench(argv: list[str]) -> int:
    """``samn report bench``, once its file is known to be a bench result: the report
    writes next to it, so a wrong file must be refused before anything is written."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("result", type=Path, nargs="?")
    path = parser.parse_known_args(argv)[0].result
    if path is not None:
        check_bench_result(path)
    from samn_tracker.reports.speed import main as bench_report
    return bench_report(argv)


def check_bench_result(path: Path) -> None:
    """Raise ``InputError`` unless ``path`` holds a ``samn bench`` result (bench.json or
    long.json) with everything its report reads."""
    try:
        result = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # ValueError: not JSON, not text
        raise InputError(f"not a samn bench result: {path} ({err})") from None
    problem = next(filter(None, _bench_problems(result)), "")
    if problem:
        raise InputError(f"not a samn bench result: {path} ({problem})")


def _bench_problems(result: Any) -> Iterator[str]:
    """What keeps the report from reading ``result``, part by part ('' for a part that is
    fine); a part is looked at only once the parts it sits in passed."""
    long = isinstance(result, dict) and "runs" in result
    yield _problem(result, LONG if long else BENCH, "")
    if long:
        yield from (_problem(run, RUN, f"runs.{name}.") for name, run in result["runs"].items())
        return
    sequences = result["meta"]["sequences"]
    yield "" if all(isinstance(s, str) for s in sequences) else "meta.sequences is not a list of names"
    for name, entry in result["trackers"].items():
        yield _problem(entry, TRACKER, f"trackers.{name}.")
        yield _problem(entry["accuracy"]["sequences"], dict.fromkeys(sequences, SEQUENCE),
                       f"trackers.{name}.accuracy.sequences.")


def _problem(value: Any, spec: Any, where: str) -> str:
    """Where ``value`` departs from ``spec`` (see ``BENCH``), named by its dotted key, or ''."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"{where.rstrip('.') or 'the file'} is not an object"
        for key, inner in spec.items():
            problem = _problem(value[key], inner, f"{where}{key}.") if key in value else f"missing {where}{key}"
            if problem:
                return problem
        return ""
    if isinstance(value, spec):
        return ""
    return f"{where.rstrip('.')} is {json.dumps(value)[:40]}, not {KINDS_OF_VALUE[spec]}"
