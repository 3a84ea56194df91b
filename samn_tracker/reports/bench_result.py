"""Whether a JSON file is a ``samn bench`` result that ``samn report bench`` can read: the
report writes next to the file, so a wrong or damaged one is refused, naming the first field
at fault, before anything is written."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from samn_tracker.errors import InputError

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


RESULT_FILES = ("bench.json", "long.json")


def bench_result_files(path: Path) -> list[Path]:
    """``path`` itself, or the results in it where it is a ``samn bench --out`` folder."""
    if not path.is_dir():
        return [path]
    files = [path / name for name in RESULT_FILES if (path / name).is_file()]
    if not files:
        raise InputError(f"not a samn bench result: {path} is a folder without {' or '.join(RESULT_FILES)}")
    return files


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
