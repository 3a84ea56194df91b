"""The small JSON summary every scored run leaves under ``<out>/.../summaries/``: what
``samn report`` reads to put several trackers side by side."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from samn_tracker.errors import InputError

BENCHMARKS = ("got10k", "trackingnet", "davis2016", "davis2017")


@dataclass
class Summary:
    """Scores of one tracker on one benchmark split, in display order."""

    benchmark: str
    split: str
    tracker: str
    scores: dict[str, float]
    curves: dict[str, list[float]] = field(default_factory=dict)  # "success" over "success_x"

    def save(self, path: Path) -> None:
        from samn_tracker.atomic import write_text

        write_text(Path(path), json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Summary":
        try:
            data = json.loads(Path(path).read_text())
            summary = cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise InputError(f"not a benchmark summary: {path} ({err})") from None
        if summary.benchmark not in BENCHMARKS:
            raise InputError(f"{path}: unknown benchmark {summary.benchmark!r}")
        return summary


def summary_path(split_dir: Path, tracker: str) -> Path:
    return Path(split_dir) / "summaries" / f"{tracker}.json"
