"""The loop that ``samn train`` and ``samn distill`` share: epochs over a loader until the
step count, a ``log.csv`` row per logged step, a progress bar, a checkpoint every
``checkpoint_every`` steps and on the way out (Ctrl-C and a scheduler's SIGTERM included,
so a run loses at most the steps since its last save), and the curve plot at the end.

What a step does, what a checkpoint holds and what the curve shows stay with each command.
"""
from __future__ import annotations

import csv
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Sampler

from samn_tracker.atomic import replacing
from samn_tracker.errors import InputError
from samn_tracker.exits import Terminated, note
from samn_tracker.run_folder import check_writable
from samn_tracker.weights import load_checkpoint

RUN_FILES = ("last.pth", "log.csv")
# The settings a resumed run may change (docs/training.md, "GPUs, clusters, resume"): how
# long, where and how often it saves, the rate, and the backbone blocks that also train;
# any other change makes another run than the checkpoint's.
RESUMABLE = ("out_dir", "steps", "lr", "checkpoint_every", "log_every", "workers", "device",
             "train_backbone_tail")


@dataclass
class StepResult:
    """What one optimiser step reports."""

    loss: float
    columns: list[str]                  # the log row's values after the loss, formatted
    postfix: dict[str, str] = field(default_factory=dict)  # beside the progress bar


@dataclass
class LoopSummary:
    steps: int                          # where the run stands (a resumed run counts the earlier steps)
    losses: list[float]                 # of this run's steps
    interrupted: Optional[type[KeyboardInterrupt]]  # what stopped the run early (``Terminated``: SIGTERM)
    run_steps: int
    seconds: float
    data_wait_seconds: float            # time the loop waited for the loader: what a starved GPU shows


@dataclass
class RunFiles:
    """Where the run writes, and whether this process writes at all (rank 0 of a
    distributed run does; the others only step)."""

    out: Path
    columns: Sequence[str]              # the log's columns between "step", "loss" and "seconds"
    save: Callable[[int], None]         # a checkpoint at this step
    plot: Callable[[Path, Path], None]  # (log.csv, curve.png)
    writes: bool = True


def check_out_dir(out: Path, resume: bool) -> None:
    """A fresh run must not replace another run's checkpoint nor mix its curve into that
    run's log, and ``out`` must be a folder this process can make and write; checked
    before any work."""
    check_writable(out, out, "out_dir")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not resume:
        raise InputError(f"{out} already holds a run ({', '.join(found)}): add --resume to continue it, "
                         "or choose another out_dir")
    if resume and not (out / "last.pth").exists():
        note(f"no checkpoint in {out}: starting at step 0")


def check_resumed_settings(out: Path, settings: dict, saved: Callable[[dict], Optional[dict]],
                           allow_changes: bool) -> None:
    """A resume continues the run of ``out/last.pth`` (``saved(meta)``: the settings it
    recorded), so a change outside RESUMABLE is refused before any work, naming each,
    unless ``allow_changes`` (a deliberate fine-tune; then noted, and the checkpoints
    record the new settings)."""
    last = out / "last.pth"
    if not last.exists():
        return
    stored = saved(load_checkpoint(last)["meta"]) or {}
    changed = [key for key, value in settings.items()
               if key in stored and key not in RESUMABLE and stored[key] != value]
    if not changed:
        return
    changes = "; ".join(f"{key} {stored[key]!r} -> {settings[key]!r}" for key in changed)
    if not allow_changes:
        keep = " ".join(f"--set {key}={as_set_value(stored[key])}" for key in changed)
        may = ", ".join(key for key in RESUMABLE if key in settings)  # those this command has
        raise InputError(f"--resume changes settings of the run in {last}: {changes} (only "
                         f"{may} may change): give {keep} to continue it, "
                         "add --allow-changes to go on with the change, or choose another out_dir")
    note(f"resuming {last} with changed settings: {changes}")


def as_set_value(value) -> str:
    """``value`` as ``--set KEY=...`` reads it back."""
    return value if isinstance(value, str) else repr(value)


def drop_rows_after(log_csv: Path, step: int) -> None:
    """The log as it was at the checkpoint: rows a hard kill left after it would be
    written again by the resumed run (replaced atomically)."""
    if not log_csv.exists():
        return
    with open(log_csv, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) <= step]
    if len(kept) == len(rows):
        return
    with replacing(log_csv) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def run_steps(loader: DataLoader, step: int, steps: int, train_step: Callable[[dict, int], StepResult],
              files: RunFiles, checkpoint_every: int, log_every: int = 1, progress: bool = True) -> LoopSummary:
    """Step from ``step`` to ``steps`` over ``loader`` (``train_step(batch, s)`` makes step
    s + 1), with the log, the bar and the checkpoints of ``files``. A resumed run goes on
    in the epoch of its step and ends that epoch where an uninterrupted run would; with the
    loader's ``EpochOrder`` sampler and per-step draws (``step_seed``) it takes the same steps."""
    from tqdm import tqdm

    if step >= steps:
        note(f"already at step {step} of {steps}: nothing to do")
        return LoopSummary(step, [], None, 0, 0.0, 0.0)
    log_file = None
    if files.writes:
        files.out.mkdir(parents=True, exist_ok=True)
        drop_rows_after(files.out / "log.csv", step)
        log_file = open(files.out / "log.csv", "a", newline="")
    log = csv.writer(log_file) if log_file is not None else None
    if log is not None and log_file.tell() == 0:
        log.writerow(["step", "loss", *files.columns, "seconds"])
    bar = tqdm(total=steps, initial=step, unit="step", disable=not (progress and files.writes))
    losses: list[float] = []
    interrupted: Optional[type[KeyboardInterrupt]] = None
    first_step = step
    run_start = waiting_since = time.perf_counter()
    data_wait = 0.0
    epoch, done = divmod(step, len(loader))
    batches = None
    try:
        with interrupt_on_sigterm():
            while step < steps:
                start_epoch(loader, epoch, done)
                batches = iter(loader)
                for batch in islice(batches, len(loader) - done):
                    if step >= steps:
                        break
                    start = time.perf_counter()
                    data_wait += start - waiting_since
                    result = train_step(batch, step)
                    step += 1
                    losses.append(result.loss)
                    if log is not None and step % log_every == 0:
                        log.writerow([step, f"{result.loss:.5f}", *result.columns,
                                      f"{time.perf_counter() - start:.3f}"])
                        log_file.flush()
                    bar.update()
                    bar.set_postfix(result.postfix)
                    if files.writes and step % checkpoint_every == 0:
                        files.save(step)
                    waiting_since = time.perf_counter()
                epoch, done = epoch + 1, 0
    except KeyboardInterrupt as stop:
        interrupted = type(stop)
    except InputError as err:  # bad data met by a worker: its own line, not the worker's traceback
        raise InputError(worker_message(err)) from None
    finally:
        stop_workers(batches)
        seconds = time.perf_counter() - run_start
        bar.close()
        if files.writes and (step > first_step or interrupted):
            files.save(step)
        if log_file is not None:
            log_file.close()
            if step > 0:
                files.plot(files.out / "log.csv", files.out / "curve.png")
            elif not interrupted:  # failed before its first step: no run left to refuse a re-run
                (files.out / "log.csv").unlink()
    return LoopSummary(step, losses, interrupted, step - first_step, seconds, data_wait)


def start_epoch(loader: DataLoader, epoch: int, skip: int) -> None:
    """Before each pass over ``loader``: its ``EpochOrder`` sampler draws the epoch's order
    from sample ``skip`` batches on (those a resumed run took already), and a dataset whose
    draws follow the epoch (the frame-gap curriculum) learns it."""
    if isinstance(loader.sampler, EpochOrder):
        loader.sampler.set_epoch(epoch, skip * (loader.batch_size or 1))
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)


class EpochOrder(Sampler):
    """One rank's samples of an epoch in an order that depends on (seed, epoch) alone, as
    ``DistributedSampler`` draws it (padded to a multiple of the ranks), from sample ``skip``
    on: a resumed run takes the rest of its epoch as an uninterrupted run would. (A shuffling
    DataLoader draws each epoch's order from a generator that a resume seeds afresh.)"""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.per_rank = math.ceil(size / world)
        self.epoch = self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        order = (order * math.ceil(self.per_rank * self.world / self.size))[:self.per_rank * self.world]
        return iter(order[self.rank::self.world][self.skip:])


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one step's random draws: a resumed step draws what it would have drawn."""
    return ((seed * 1_000_003 + rank) * 1_000_003 + step) % 2 ** 63  # torch's generators take < 2**63


def worker_message(err: InputError) -> str:
    """The message of an error a DataLoader worker raised: torch gives it back with the
    worker's traceback, whose last line is ``samn_tracker.errors.InputError: MESSAGE``."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    return text.strip().splitlines()[-1].partition(": ")[2]


def stop_workers(batches) -> None:
    """Shut a DataLoader iterator's worker processes down now. They ignore SIGTERM
    (``worker_ignores_interrupts``), so workers that an error's traceback keeps alive would
    not die when the process exits, and the exit would wait for them for ever."""
    getattr(batches, "_shutdown_workers", lambda: None)()


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def worker_ignores_interrupts(worker_id: int) -> None:
    """A SIGTERM or Ctrl-C sent to the whole process group is the main process's to
    handle: it saves and shuts the workers down, so they must not die first."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Schedulers stop (preempt) jobs with SIGTERM: treat it like Ctrl-C, so the run saves
    (as ``Terminated``, which ends with its own exit status)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
