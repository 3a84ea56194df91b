"""What made a results folder, kept beside it as ``<folder>.settings.json``: written when a
run starts, checked when a run resumes into the folder. Without it an ablation given the
baseline's ``--out`` would skip every sequence the baseline finished and score the
baseline's results as its own.

Recorded and compared: the preset, the settings ``--set`` changed (by value: setting a
preset's own value changes nothing), the weights by their content (two copies of one file
are the same weights), the seed, the precision and, on a CPU, the threads (another count
rounds otherwise, and the first-frame tuning carries that into the masks). Not recorded,
since results agree up to float rounding across them: ``--batch``, ``--groups``,
``--device`` and the ``--set`` keys that change how outputs are computed, not what they
are (``SAME_OUTPUT_SETTINGS``). Threads are compared between two CPU runs only: a record
from before they were recorded, or of a GPU run, matches any count.

A run that tracks also holds ``<folder>.lock`` until it ends (``hold``), so that a second
run into the same folder is refused while the first works: both would pass the record's
check, then replace each other's sequences, and each score results of the other's settings.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Optional

from samn_tracker import atomic
from samn_tracker.build import tracker_config
from samn_tracker.config import SAME_OUTPUT_SETTINGS, preset
from samn_tracker.devices import run_threads
from samn_tracker.errors import InputError
from samn_tracker.settings import dotted
from samn_tracker.weights import builtin_checkpoint, sha256_file

# probability_maps decides how DAVIS merges a sequence's objects: it changes the results.
UNRECORDED_SETTINGS = SAME_OUTPUT_SETTINGS - {"probability_maps"}
COMPARED = ("preset", "settings", "weights_sha256", "seed", "precision", "threads")


def record_file(run_dir: Path) -> Path:
    """Beside the folder, not in it: a submission zip of the folder stays the results alone."""
    return run_dir.with_name(run_dir.name + ".settings.json")


def settings_record(args: argparse.Namespace) -> dict[str, Any]:
    """The record of the tracker this command builds (its settings checked here)."""
    config = tracker_config(args.preset, args.overrides)
    weights = Path(args.weights) if args.weights else builtin_checkpoint(config.name, config.model.memory_pass)
    if weights is not None and not weights.is_file():
        raise InputError(f"checkpoint not found: {weights}")
    default = dotted(preset(args.preset).to_dict())
    settings = {key: json.loads(json.dumps(value)) for key, value in dotted(config.to_dict()).items()
                if value != default[key] and key not in UNRECORDED_SETTINGS}
    return {"preset": args.preset, "settings": settings,
            "weights": None if weights is None else str(weights),
            "weights_sha256": None if weights is None else sha256_file(weights),
            "seed": args.seed, "precision": args.precision,
            "threads": run_threads(args.device, args.preset, args.threads)}


_HELD: dict[Path, Any] = {}  # the open lock files, held until the process ends


def hold(run_dir: Path) -> None:
    """Hold ``<run_dir>.lock`` for this process, or raise InputError naming the process that
    holds it. An advisory lock the system drops with its process, so a killed run leaves no
    stale lock. Where ``fcntl`` is missing (Windows) nothing is held."""
    try:
        import fcntl
    except ImportError:
        return
    file = run_dir.parent.resolve() / (run_dir.name + ".lock")
    if file in _HELD:  # a second open file of this process would not get the lock either
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    lock = open(file, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise InputError(f"{run_dir} is being written by another run ({holder}): wait for it to end, or give "
                         "another --out or --tracker-name") from None
    lock.truncate(0)
    lock.write(f"process {os.getpid()}\n")
    lock.flush()
    _HELD[file] = lock


def claim(run_dir: Path, record: dict[str, Any]) -> None:
    """Record ``record`` for ``run_dir``, or raise InputError if the folder holds results
    made otherwise. A folder without results, or whose results predate these records,
    takes this record."""
    file = record_file(run_dir)
    earlier = _read(file)
    if earlier is not None and run_dir.is_dir() and any(run_dir.iterdir()):
        differ = differences(record, earlier)
        if differ:
            raise InputError(f"{run_dir} holds results made with other settings ({'; '.join(differ)}; "
                             f"recorded in {file}): give another --out or --tracker-name")
        return
    atomic.write_text(file, json.dumps(record, indent=2) + "\n")


def _read(file: Path) -> Optional[dict]:
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read the record of a results folder {file}: {err}") from None
    if not isinstance(record, dict):
        raise InputError(f"{file} is not the record of a results folder")
    return record


def differences(now: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """What differs between two records, one phrase each, ``now`` first."""
    differ = []
    for key in COMPARED:
        if now.get(key) == before.get(key) or key == "threads" and None in (now.get(key), before.get(key)):
            continue  # threads: a GPU's run (None), or a record from before they were recorded
        if key == "settings":
            settings = [now.get(key) or {}, before.get(key) or {}]
            differ += [f"--set {name}: {_shown(now, name)} now, {_shown(before, name)} before"
                       for name in sorted(settings[0].keys() | settings[1].keys())
                       if settings[0].get(name) != settings[1].get(name)]
        elif key == "weights_sha256":
            names = [Path(r["weights"]).name if r.get("weights") else "none" for r in (now, before)]
            differ.append(f"weights: {names[0]} now, {names[1]} before (other content)")
        elif key == "threads":
            differ.append(f"threads: {now[key]} now, {before[key]} before (--threads {before[key]} repeats it)")
        else:
            differ.append(f"{key}: {now.get(key)} now, {before.get(key)} before")
    return differ


def _shown(record: dict[str, Any], name: str) -> str:
    """A setting's value in a record: recorded, or else the preset's."""
    settings = record.get("settings") or {}
    if name in settings:
        return repr(settings[name])
    return f"{dotted(preset(record['preset']).to_dict()).get(name)!r} (the preset's)"
