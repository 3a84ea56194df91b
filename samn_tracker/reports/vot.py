"""EAO / A / R and long-term Pr / Re / F tables and plots from VOT toolkit output, for
several trackers.

Inputs are the JSON files written by ``vot analysis --format json`` (EAO, accuracy,
robustness, EAO curves; long-term precision, recall, F-score and their curves: taken as
the toolkit computed them) and, for the per-attribute
plot, the raw reset-based results of a workspace. The toolkit has no per-attribute
reset-based measure, so ``attribute_measures`` computes it with the toolkit's own
overlap and validity rules restricted to the frames carrying a tag; over a tag that
covers every frame it equals the toolkit's A and cumulative failures (tested).

Every input is checked before anything is written: a report is complete or absent.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from samn_tracker.atomic import save_figure, write_text
from samn_tracker.command_parser import CommandParser, comma_names
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.reports.coverage import counts_if_differing, listed_counts
from samn_tracker.run_folder import check_writable

ATTRIBUTES = ("camera_motion", "illum_change", "occlusion", "size_change", "motion_change", "empty")
BURNIN = 10  # frames ignored after each (re-)initialisation, as the toolkit's AR analysis

_SUPERVISED = "vot.analysis.supervised."
_MULTISTART = "vot.analysis.multistart."
_LONGTERM = "vot.analysis.longterm."
KINDS = {"reset": "reset-based", "anchor": "anchor-based", "longterm": "long-term"}


@dataclass
class ExperimentResult:
    """One tracker on one experiment, as reported by ``vot analysis``."""

    tracker: str
    experiment: str
    kind: str                                  # a key of KINDS
    eao: Optional[float] = None
    accuracy: Optional[float] = None
    robustness: Optional[float] = None         # reset: mean failures; anchor: tracked fraction
    failures: Optional[float] = None           # reset: cumulative failures (when analysed)
    length: Optional[float] = None             # reset: mean sequence length (frames)
    eao_curve: list[float] = field(default_factory=list)
    eao_interval: Optional[tuple[int, int]] = None
    precision: Optional[float] = None          # long-term: Pr, Re and F at the threshold of the best F
    recall: Optional[float] = None
    fscore: Optional[float] = None
    pr_curve: list[tuple[float, float]] = field(default_factory=list)  # long-term: (recall, precision)
    f_curve: list[float] = field(default_factory=list)  # long-term: F per threshold, highest first
    sequences: list[str] = field(default_factory=list)  # the sequences the analysis covered


def load_analysis(path: Path | str) -> list[ExperimentResult]:
    """Results of every tracker and reset-based, anchor-based or long-term experiment in
    one analysis JSON."""
    path = Path(path)
    try:
        document = json.loads(path.read_bytes())
        trackers = list(document["trackers"])
        sequences = list(document.get("sequences") or [])
        results = []
        for name, experiment in document["results"].items():
            analyses = experiment["parameters"]["analyses"]
            for index, tracker in enumerate(trackers):
                record = ExperimentResult(tracker, name, kind="", sequences=sequences)
                for analysis, values in zip(analyses, experiment["results"]):
                    _apply(record, analysis, values[index] if values else None)
                if record.kind:
                    results.append(record)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        raise InputError(f"{path} is not a `vot analysis --format json` file "
                         f"({type(error).__name__}: {error})") from None
    return results


def load_analyses(paths: Sequence[Path]) -> list[ExperimentResult]:
    """The results of several analysis files (a file given twice is read once). A tracker's
    results on one experiment in two files are refused unless equal, naming both files, as
    is an experiment that is reset-based in one file and anchor-based in another: one table
    cell, one column, cannot hold both (nor a long-term experiment)."""
    seen: dict[tuple[str, str], tuple[Path, ExperimentResult]] = {}
    kinds: dict[str, tuple[Path, str]] = {}
    for path in dict.fromkeys(Path(p).resolve() for p in paths):
        for r in load_analysis(path):
            first, earlier = seen.setdefault((r.tracker, r.experiment), (path, r))
            if earlier != r:
                raise InputError(f"{r.tracker} on experiment {r.experiment} is in {first} "
                                 f"({_count(earlier.sequences)}) and in {path} ({_count(r.sequences)}); "
                                 "give one of them")
            where, kind = kinds.setdefault(r.experiment, (path, r.kind))
            if kind != r.kind:
                raise InputError(f"experiment {r.experiment} is {KINDS[kind]} in {where} and "
                                 f"{KINDS[r.kind]} in {path}; report them separately")
    return [r for _, r in seen.values()]


def _count(sequences: Sequence[str]) -> str:
    return f"{len(sequences)} sequence" + "s" * (len(sequences) != 1)


def select_trackers(results: Sequence[ExperimentResult], names: str) -> list[ExperimentResult]:
    """``--trackers a,b``: their results in that order, each once (a note names repeats); a
    name without results is refused."""
    order, repeated = comma_names([names])
    if repeated:
        print(f"samn report vot: note: --trackers: {', '.join(repeated)} given more than once; "
              "each is taken once", file=sys.stderr)
    available = list(dict.fromkeys(r.tracker for r in results))
    unknown = [n for n in order if n not in available]
    if not order:
        raise InputError(f"--trackers {names!r} names no tracker (the analysis files have {', '.join(available)})")
    if unknown:
        raise InputError(f"--trackers: no results of {', '.join(unknown)} in the analysis files "
                         f"(they have {', '.join(available)})")
    return sorted((r for r in results if r.tracker in order), key=lambda r: order.index(r.tracker))


def differing_sequences(results: Sequence[ExperimentResult]) -> dict[str, dict[str, int]]:
    """Experiment -> {tracker: sequence count} for the experiments whose trackers come from
    analyses of different sequences (files of different workspaces or stack versions)."""
    differing = {}
    for experiment in dict.fromkeys(r.experiment for r in results):
        counts = counts_if_differing({r.tracker: r.sequences for r in results if r.experiment == experiment})
        if counts:
            differing[experiment] = counts
    return differing


def _apply(record: ExperimentResult, analysis: dict, value) -> None:
    kind = analysis["type"]
    if value is None:
        return
    if kind.startswith(_SUPERVISED):
        record.kind = "reset"
    elif kind.startswith(_MULTISTART):
        record.kind = "anchor"
    elif kind.startswith(_LONGTERM):
        record.kind = "longterm"
    short = kind.rsplit(".", 1)[-1]
    if short == "AverageAccuracyRobustness":
        record.accuracy, record.robustness = float(value[0]), float(value[1])
        if record.kind == "reset":
            record.length = float(value[3])
    elif short == "EAOScore":
        record.eao = None if np.isnan(value[0]) else float(value[0])
        record.eao_interval = (int(analysis["low"]), int(analysis["high"]))
    elif short == "EAOCurve":
        record.eao_curve = [float(v) for v in value[0]]
    elif short == "CumulativeFailureCount":
        record.failures = float(value[0])
    elif short == "PrecisionRecall":
        record.precision, record.recall, record.fscore = (float(v) for v in value)
    elif short == "PrecisionRecallCurve":
        record.pr_curve = [(float(recall), float(precision)) for recall, precision in value[0]]
    elif short == "FScoreCurve":
        record.f_curve = [float(v) for v in value[0]]


def accuracy_unmeasured(result: ExperimentResult) -> bool:
    """A reset-based A of 0 with no failure counts no frame: a counted frame of overlap 0
    would have been a failure, so every frame lay within the burn-in (or was unknown)."""
    return result.kind == "reset" and result.accuracy == 0 and result.robustness == 0


def mark_unmeasured(results: Sequence[ExperimentResult]) -> list[ExperimentResult]:
    """``results`` with an A that counts no frame as None (``-``, not 0), and a note saying so."""
    unmeasured = [r for r in results if accuracy_unmeasured(r)]
    if unmeasured:
        which = ", ".join(f"{r.tracker} on {r.experiment} ({r.length:g} frames per sequence)" for r in unmeasured)
        print(f"samn report vot: note: A not measured (-) for {which}: every frame lies within the burn-in "
              f"of {BURNIN} frames after an initialisation", file=sys.stderr)
    return [dataclasses.replace(r, accuracy=None) if accuracy_unmeasured(r) else r for r in results]


def summary_table(results: Sequence[ExperimentResult]) -> pd.DataFrame:
    """Trackers as rows; (experiment, EAO/A/R) as columns, (experiment, Pr/Re/F) for a
    long-term experiment, and (experiment, sequences), the number analysed, where that
    experiment's trackers were analysed on different sequences."""
    differing = differing_sequences(results)
    rows: dict[str, dict] = {}
    for r in results:
        row = rows.setdefault(r.tracker, {})
        if r.kind == "longterm":
            row.update({(r.experiment, "Pr"): r.precision, (r.experiment, "Re"): r.recall,
                        (r.experiment, "F"): r.fscore})
        else:
            row.update({(r.experiment, "EAO"): r.eao, (r.experiment, "A"): r.accuracy,
                        (r.experiment, "R"): r.robustness})
        if r.experiment in differing:
            row[(r.experiment, "sequences")] = len(r.sequences)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["experiment", "measure"])
    for column in [c for c in table.columns if c[1] == "sequences"]:
        table[column] = table[column].astype("Int64")
    table.index.name = "tracker"
    return table


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """GitHub Markdown without the optional ``tabulate`` dependency; a missing value is -."""
    headers = [table.index.name or ""] + [" ".join(map(str, c)) if isinstance(c, tuple) else str(c)
                                          for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for index, row in table.iterrows():
        cells = ["-" if pd.isna(v) else f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)
                 for v in row]
        lines.append("| " + " | ".join([str(index)] + cells) + " |")
    return "\n".join(lines) + "\n"


def load_workspace(workspace_dir: Path, experiment_name: str):
    """The toolkit's workspace and its experiment ``experiment_name``, or ``InputError``."""
    import yaml
    from attributee import AttributeException
    from vot import ToolkitException
    from vot.workspace import Workspace

    try:
        workspace = Workspace.load(str(workspace_dir))
    except (ToolkitException, AttributeException, yaml.YAMLError, OSError) as error:
        detail = " ".join(str(error).split())
        raise InputError(f"--workspace {workspace_dir}: not a usable VOT toolkit workspace ({detail})") from None
    if experiment_name not in workspace.stack.experiments:
        raise InputError(f"experiment {experiment_name!r} is not in the stack of {workspace_dir} "
                         f"(has {', '.join(workspace.stack.experiments)})")
    return workspace, workspace.stack.experiments[experiment_name]


def is_reset_based(experiment) -> bool:
    """Per-attribute measures count failures and the burn-in after each re-initialisation:
    they exist for reset-based (supervised) experiments only, not anchor-based ones."""
    from vot.experiment.multirun import SupervisedExperiment

    return isinstance(experiment, SupervisedExperiment)


def attribute_measures(workspace_dir: Path | str, tracker: str, experiment_name: str = "baseline",
                       attributes: Sequence[Optional[str]] = ATTRIBUTES) -> pd.DataFrame:
    """Per-attribute accuracy and failures of one tracker's reset-based results.

    For sequence s and attribute t (N_st tagged frames): A_st = mean over repetitions of
    the mean overlap over tagged frames that the toolkit's accuracy counts (not unknown,
    not a failure, not within ``BURNIN`` frames of an initialisation; 0 if none),
    F_st = mean over repetitions of the failures on tagged frames. Returned per
    attribute: accuracy = sum_s A_st N_st / sum_s N_st (NaN, not measured, when no tagged
    frame counts: all within the burn-in), failures = sum_s F_st, frames, and failures
    per 100 tagged frames. ``empty`` = frames without any of the other
    VOT attributes; ``None`` = every frame.
    """
    workspace, experiment = load_workspace(Path(workspace_dir), experiment_name)
    if not is_reset_based(experiment):
        raise InputError(f"experiment {experiment_name!r} is not reset-based; per-attribute "
                         "measures are defined for reset-based experiments")
    return _attribute_measures(workspace, experiment, tracker, attributes)


def _attribute_measures(workspace, experiment, tracker: str, attributes: Sequence[Optional[str]]) -> pd.DataFrame:
    """``attribute_measures`` on a loaded workspace and reset-based experiment."""
    from vot import ToolkitException
    from vot.analysis import is_special
    from vot.region import calculate_overlaps
    from vot.tracker import Trajectory

    try:
        entry = workspace.registry[tracker]
    except ToolkitException:
        raise InputError(f"tracker {tracker!r} is not in the registry of the workspace {workspace.directory}") from None
    sequences = experiment.transform(list(workspace.dataset))
    totals = {t: [0.0, 0.0, 0, 0] for t in attributes}   # sum A*N, sum F, sum N, frames counted
    for sequence in sequences:
        trajectories = experiment.gather(entry, sequence)
        if not trajectories:
            raise InputError(f"no {experiment.identifier} results of {tracker} for sequence {sequence.name} "
                             f"in the workspace {workspace.directory}")
        tags = [set(sequence.tags(i)) for i in range(len(sequence))]
        groundtruth = sequence.groundtruth()
        runs = []
        for trajectory in trajectories:
            regions = trajectory.regions()
            overlaps = np.asarray(calculate_overlaps(regions, groundtruth, sequence.size))
            valid = np.ones(len(regions), dtype=bool)
            failed = np.zeros(len(regions), dtype=bool)
            for i, region in enumerate(regions):
                if is_special(region, Trajectory.UNKNOWN):
                    valid[i] = False
                elif is_special(region, Trajectory.INITIALIZATION):
                    valid[i:i + BURNIN] = False
                elif is_special(region, Trajectory.FAILURE):
                    valid[i] = False
                    failed[i] = True
            runs.append((overlaps, valid, failed))
        for attribute in attributes:
            tagged = np.array([_has(attribute, t) for t in tags], dtype=bool)
            count = int(tagged.sum())
            if count == 0:
                continue
            accuracy = np.mean([o[v & tagged].mean() if (v & tagged).any() else 0.0 for o, v, _ in runs])
            failures = np.mean([(f & tagged).sum() for _, _, f in runs])
            total = totals[attribute]
            total[0] += accuracy * count
            total[1] += failures
            total[2] += count
            total[3] += sum(int((v & tagged).sum()) for _, v, _ in runs)
    rows = []
    for attribute, (weighted, failures, frames, counted) in totals.items():
        rows.append({"attribute": attribute or "all", "accuracy": weighted / frames if counted else np.nan,
                     "failures": failures, "frames": frames,
                     "failures_per_100": 100.0 * failures / frames if frames else np.nan})
    return pd.DataFrame(rows).set_index("attribute")


def _has(attribute: Optional[str], tags: set) -> bool:
    if attribute is None:
        return True
    if attribute == "empty" and "empty" not in tags:
        return not (tags & set(ATTRIBUTES))
    return attribute in tags


def plot_eao_curves(results: Sequence[ExperimentResult], experiment: str, out: Path) -> list[Path]:
    """EAO curve of each tracker on ``experiment`` with the EAO interval shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = sorted((r for r in results if r.experiment == experiment and r.eao_curve),
                    key=lambda r: -r.eao if r.eao is not None else float("inf"))  # the legend ranked
    if not chosen:
        raise InputError(f"no EAO curve for experiment {experiment!r} in the analysis files")
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for r in chosen:
        label = f"{r.tracker} [{r.eao:.3f}]" if r.eao is not None else r.tracker
        # length 0 holds the toolkit's 0, no sequence: drawn, it was a spike at the axis
        axes.plot(np.arange(1, len(r.eao_curve)), r.eao_curve[1:], label=label)
    interval = next((r.eao_interval for r in chosen if r.eao_interval), None)
    if interval:
        axes.axvspan(*interval, color="0.9", zorder=0, label=f"EAO averaged over {interval[0]}-{interval[1]}")
    axes.set(xlabel="Sequence length (frames)", ylabel="Expected overlap", title=f"EAO curve ({experiment})",
             ylim=(0, 1))
    _legend(axes, [r.tracker for r in chosen])
    return _save(figure, out / f"eao_curve_{experiment}")


def plot_precision_recall(results: Sequence[ExperimentResult], experiment: str, out: Path) -> list[Path]:
    """The long-term plots of the VOT-LT reports: each tracker's precision-recall curve
    with its best F marked, and its F-score over the thresholds, from the highest
    confidence threshold to the lowest (the toolkit's normalised threshold axis)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = sorted((r for r in results if r.experiment == experiment and r.pr_curve),
                    key=lambda r: -r.fscore if r.fscore is not None else float("inf"))  # the legend ranked
    if not chosen:
        raise InputError(f"no precision-recall curve for experiment {experiment!r} in the analysis files")
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for r in chosen:
        label = f"{r.tracker} [{r.fscore:.3f}]" if r.fscore is not None else r.tracker
        recall, precision = np.array(r.pr_curve).T
        line, = left.plot(recall[1:], precision[1:], label=label)  # point 0: the threshold above every score
        if r.fscore is not None:
            left.plot(r.recall, r.precision, "o", color=line.get_color())
        if r.f_curve:  # point 0 left out here too
            right.plot(np.linspace(1, 0, len(r.f_curve))[1:], r.f_curve[1:], color=line.get_color(), label=label)
    left.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1),
             title=f"Tracking precision-recall ({experiment})")
    right.set(xlabel="Confidence threshold (normalised)", ylabel="F-score", xlim=(1, 0), ylim=(0, 1),
              title=f"F-score ({experiment})")
    if _crowded([r.tracker for r in chosen]):  # beside the F-score panel, not between the panels
        right.legend(*left.get_legend_handles_labels(), fontsize="small", loc="upper left",
                     bbox_to_anchor=(1.02, 1), frameon=False)
    else:
        left.legend(fontsize="small")
    figure.tight_layout()
    return _save(figure, out / f"precision_recall_{experiment}")


def plot_attributes(measures: dict[str, pd.DataFrame], out: Path, name: str = "attributes") -> list[Path]:
    """Per-attribute accuracy and failures (per 100 frames) for several trackers (Fig. 11 style).
    An attribute no frame carries is marked "no frames" (its bars would look like a score of
    0), an accuracy that counts no frame (all within the burn-in) "not measured"; the
    failure axis starts at 0, and reaches at least 1 when there is no failure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(measures.values()))  # the frames per attribute are the workspace's, the same for all
    attributes = list(first.index)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / len(measures)
    x = np.arange(len(attributes))
    centres = x + width * (len(measures) - 1) / 2
    for k, (tracker, table) in enumerate(measures.items()):
        table = table.reindex(attributes)
        left.bar(x + k * width, table["accuracy"], width, label=tracker, color=f"C{k % 10}")
        right.bar(x + k * width, table["failures_per_100"], width, label=tracker, color=f"C{k % 10}")
        for position, accuracy, frames in zip(x + k * width, table["accuracy"], table["frames"]):
            if frames > 0 and np.isnan(accuracy):
                _mark(left, position, "not measured")
        none = [p for p, failures, frames in zip(x + k * width, table["failures_per_100"], table["frames"])
                if frames > 0 and failures == 0]  # no failure: a bar of no height, marked as a score
        if none:  # an empty plot left out: drawn, it squeezed both panels
            right.plot(none, [0] * len(none), "_", color=f"C{k % 10}", markersize=10, markeredgewidth=3,
                       clip_on=False, zorder=3)
    most = max(float(np.nanmax(t["failures_per_100"], initial=0.0)) for t in measures.values())
    right.set_ylim(0, max(1.0, 1.1 * most))
    left.set_ylim(0, 1)
    for axes, ylabel in ((left, "Accuracy"), (right, "Failures per 100 frames")):
        axes.set_xticks(centres)
        axes.set_xlim(centres[0] - 0.5, centres[-1] + 0.5)  # NaN bars (no frames) do not widen it
        axes.set_xticklabels([a.replace("_", " ") for a in attributes], rotation=30, ha="right")
        axes.set_ylabel(ylabel)
        for centre, frames in zip(centres, first["frames"]):
            if frames == 0:
                _mark(axes, centre, "no frames")
    figure.suptitle("Accuracy and failures per visual attribute", y=0.99)
    # above the panels, in a row, under the title: inside, it sat on the highest bars
    figure.legend(*left.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.92),
                  ncol=min(len(measures), 4), fontsize="small", frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.92 - 0.05 * ((len(measures) + 3) // 4)))
    return _save(figure, out / name)


def _crowded(trackers: Sequence[str]) -> bool:
    """Whether a legend of these names, inside the axes, would hide the curves."""
    return len(trackers) > 4 or max(map(len, trackers)) > 24


def _legend(axes, trackers: Sequence[str]) -> None:
    """Inside the axes for a few short names; beside them for more or longer ones."""
    if _crowded(trackers):
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    else:
        axes.legend(fontsize="small")


def _mark(axes, x: float, text: str) -> None:
    """Upright grey ``text`` where a bar would be, for a value that is not there."""
    axes.text(x, 0.02, text, transform=axes.get_xaxis_transform(), rotation=90,
              ha="center", va="bottom", fontsize="small", color="0.4")


def _save(figure, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = save_figure(figure, stem, dpi=150, bbox_inches="tight")
    plt.close(figure)
    return paths


def write_table(table: pd.DataFrame, out: Path, name: str = "table") -> list[Path]:
    paths = [out / f"{name}.md", out / f"{name}.tex", out / f"{name}.csv"]
    write_text(paths[0], to_markdown(table))
    write_text(paths[1], table.to_latex(float_format="%.3f", na_rep="--", multicolumn_format="c"))
    write_text(paths[2], table.to_csv())
    return paths


def workspace_measures(workspace_dir: Path, experiment_name: str, trackers: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per-attribute measures of each tracker (``--workspace``); none, with a note, when the
    experiment is anchor-based, where they are not defined (``is_reset_based``)."""
    workspace, experiment = load_workspace(workspace_dir, experiment_name)
    if not is_reset_based(experiment):
        print(f"samn report vot: note: experiment {experiment_name!r} of {workspace_dir} is not reset-based; "
              "per-attribute measures are defined for reset-based experiments, so there is no attributes plot",
              file=sys.stderr)
        return {}
    measures = {t: _attribute_measures(workspace, experiment, t, ATTRIBUTES) for t in trackers}
    unmeasured = [f"{a.replace('_', ' ')} ({t})" for t, table in measures.items()
                  for a, row in table.iterrows() if row["frames"] > 0 and np.isnan(row["accuracy"])]
    if unmeasured:
        print(f"samn report vot: note: per-attribute accuracy not measured for {', '.join(unmeasured)}: "
              f"every tagged frame lies within the burn-in of {BURNIN} frames after an initialisation",
              file=sys.stderr)
    return measures


def _warn_differing_sequences(results: Sequence[ExperimentResult]) -> None:
    for experiment, counts in differing_sequences(results).items():
        print(f"samn report vot: warning: on experiment {experiment} the trackers were analysed on different "
              f"sequences: {listed_counts(counts)}; see the sequences column", file=sys.stderr)


@guarded("samn report vot")
def main(argv: Optional[list[str]] = None) -> int:
    parser = CommandParser(prog="samn report vot", epilog="""examples:
  vot analysis --workspace vot_workspace/vot2018 --format json --name samn samn csrt
  samn report vot vot_workspace/vot2018/analysis/samn.json --out results/vot2018_report
  samn report vot W/analysis/samn.json --workspace W --out results/vot2018_report   (per-attribute plot too)
  samn report vot ~/vot/lt2019/analysis/lt.json --out results/lt2019_report   (long-term: Pr/Re/F)""",
                           description="EAO/A/R table, EAO curves and "
                                     "per-attribute plot, or long-term Pr/Re/F table and precision-recall "
                                     "plots, from `vot analysis --format json` output")
    parser.add_argument("analysis", nargs="+", type=Path, help="analysis JSON file(s)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--workspace", type=Path,
                        help="workspace with the raw results, for the per-attribute plot")
    parser.add_argument("--attribute-experiment", default="baseline",
                        help="reset-based experiment for the per-attribute plot")
    parser.add_argument("--trackers", help="comma-separated subset and order of trackers")
    args = parser.parse_args(argv)
    check_writable(args.out, args.out)
    results = mark_unmeasured(load_analyses(args.analysis))
    if not results:
        raise InputError("no reset-based, anchor-based or long-term results in "
                         + ", ".join(map(str, args.analysis)))
    if args.trackers:
        results = select_trackers(results, args.trackers)
    trackers = list(dict.fromkeys(r.tracker for r in results))
    measures = workspace_measures(args.workspace, args.attribute_experiment, trackers) if args.workspace else {}
    _warn_differing_sequences(results)
    written = write_table(summary_table(results), args.out)
    for experiment in dict.fromkeys(r.experiment for r in results if r.eao_curve):
        written += plot_eao_curves(results, experiment, args.out)
    for experiment in dict.fromkeys(r.experiment for r in results if r.pr_curve):
        written += plot_precision_recall(results, experiment, args.out)
    for tracker, table in measures.items():
        written.append(args.out / f"attributes_{tracker}.csv")
        write_text(written[-1], table.to_csv())
    if measures:
        written += plot_attributes(measures, args.out)
    for path in written:
        print(path)
    return 0
