"""Tables (Markdown / LaTeX / CSV) and plots (PNG / PDF) of several trackers side by side.

Every scored run leaves a small JSON summary (benchmark, split, tracker, scores, success
curve or DAVIS's per-object J&F, sequences scored) under ``<out>/.../summaries/``; ``samn
report`` collects summaries and writes one table per benchmark and split, success plots for
the box benchmarks (LaSOT's and OTB's precision plots and success per attribute too), a plot of each
DAVIS object's J&F, and a DAVIS table laid out like the paper's Table VII (J&F, J, F
per dataset). Published numbers typed by hand are summaries
too: they may lack scores (shown as -), the curve or per-object scores (left out of the
plots, with a note) and the sequences (not compared).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pandas as pd
from matplotlib.figure import Figure

from samn_tracker.atomic import save_figure, write_text
from samn_tracker.command_parser import CommandParser
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.reports import shortened
from samn_tracker.reports.coverage import counts_if_differing, listed_counts
from samn_tracker.run_folder import check_writable
from samn_tracker.evaluation.summaries import Summary

# How scores are shown: multiplier and decimals (GOT-10k as its toolkit, DAVIS in percent).
DISPLAY = {"got10k": (1.0, 3), "trackingnet": (1.0, 1), "lasot": (1.0, 3), "otb": (1.0, 3),
           "davis2016": (100.0, 1), "davis2017": (100.0, 1)}
LINE_STYLES = ("-", "--", ":", "-.")  # one per ten trackers, the colour cycle's length
TITLES = {"got10k": "GOT-10k", "trackingnet": "TrackingNet", "lasot": "LaSOT", "otb": "OTB",
          "davis2016": "DAVIS 2016", "davis2017": "DAVIS 2017"}
DATASETS = {("otb", "uav123"): "UAV123", ("otb", "uav20l"): "UAV20L"}  # scored as OTB, named as themselves
# The curve plots of each box benchmark (OTB's toolkit draws no normalised precision), and those
# whose summaries carry a success per attribute.
CURVES_PLOTTED = {"got10k": ("success",), "trackingnet": ("success", "precision", "norm_precision"),
                  "lasot": ("success", "precision", "norm_precision"), "otb": ("success", "precision")}
WITH_ATTRIBUTES = ("lasot", "otb")
TABLE_VII_MEASURES = ("J&F", "J-Mean", "F-Mean")
SEQUENCES = "Sequences"  # the column added when a table's trackers were scored on different sequences


def find_summaries(paths: Iterable[Path]) -> list[Summary]:
    """Summaries from JSON files and from ``summaries/*.json`` anywhere below folders; a file
    found twice is read once. Two different summaries of one tracker on one benchmark split
    are refused, naming both files: a report shows one row per tracker, and which of two
    runs it should be is the user's choice."""
    files: dict[Path, None] = {}
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if p.parent.name == "summaries")
        elif path.is_file():
            found = [path]
        else:
            raise InputError(f"no such file or folder: {path}")
        files.update((f.resolve(), None) for f in found)
    if not files:
        raise InputError(f"no summaries found in {', '.join(map(str, paths))}: a folder is searched for "
                         "summaries/*.json, which samn eval writes when it scores a split with public ground "
                         "truth (not GOT-10k test, TrackingNet TEST, DAVIS test-dev)")
    loaded: dict[tuple[str, str, str], tuple[Path, Summary]] = {}
    for file in files:
        summary = Summary.load(file)
        key = (summary.benchmark, summary.split, summary.tracker)
        if key in loaded and loaded[key][1] != summary:
            title = dataset_title(summary.benchmark, summary.split)
            raise InputError(f"two summaries of {summary.tracker} on {title}: "
                             f"{loaded[key][0]} and {file}; give one of them, or score one run under "
                             "another --tracker-name")
        loaded[key] = (file, summary)
    return [summary for _, summary in loaded.values()]


def scores_table(summaries: Sequence[Summary]) -> pd.DataFrame:
    """One row per tracker, one column per score, in display units; a score a summary lacks is
    NaN (a published one typed by hand may give only some). Columns in the order of the
    summary with the most scores. A ``Sequences`` column is added when the trackers were
    scored on different sequences (``differing_sequences``) or on part of the split
    (``partial_split``)."""
    scale, decimals = DISPLAY[summaries[0].benchmark]
    order = max((list(s.scores) for s in summaries), key=len)
    columns = list(dict.fromkeys(order + [k for s in summaries for k in s.scores]))
    rows = {s.tracker: {k: _shown(k, v, scale) for k, v in s.scores.items()} for s in summaries}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(float).round(decimals)
    counts = differing_sequences(summaries) or (
        {s.tracker: len(s.sequences) for s in summaries if s.sequences} if partial_split(summaries) else {})
    if counts:
        table[SEQUENCES] = pd.array([counts.get(s.tracker) for s in summaries], dtype="Int64")
    return table.rename_axis("Tracker")


def differing_sequences(summaries: Sequence[Summary]) -> dict[str, int]:
    """Tracker -> number of sequences scored, when the trackers that recorded their sequences
    did not all score the same ones; else empty. Summaries without sequences (published
    numbers, older summaries) are not compared."""
    return counts_if_differing({s.tracker: s.sequences for s in summaries if s.sequences})


def partial_split(summaries: Sequence[Summary]) -> list[Summary]:
    """The summaries scored on part of their split (``--sequences``), as far as they know."""
    return [s for s in summaries if s.split_size is not None and len(s.sequences) < s.split_size]


def attributes_table(summaries: Sequence[Summary]) -> pd.DataFrame:
    """LaSOT's or OTB's success per attribute: one row per tracker that has them, one column per
    attribute in the toolkit's order (a paper's per-attribute table); empty when none has."""
    rows = {s.tracker: s.per_attribute for s in summaries if s.per_attribute}
    columns = list(dict.fromkeys(a for scores in rows.values() for a in scores))
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(float).round(3).rename_axis("Tracker")


def dataset_title(benchmark: str, split: str) -> str:
    """What a table or plot calls a benchmark's split: "LaSOT test", "UAV123"."""
    return DATASETS.get((benchmark, split), f"{TITLES[benchmark]} {split}")


def table_vii(summaries: Sequence[Summary]) -> pd.DataFrame:
    """DAVIS results with (dataset, measure) columns: J&F, J-Mean, F-Mean per dataset, in %."""
    columns = {}
    for s in sorted(summaries, key=lambda s: (s.benchmark, s.split)):
        dataset = dataset_title(s.benchmark, s.split)
        for measure in TABLE_VII_MEASURES:
            columns.setdefault((dataset, measure), {})[s.tracker] = 100 * s.scores.get(measure, float("nan"))
    table = pd.DataFrame(columns).round(1)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table.rename_axis("Tracker")


def _shown(key: str, value: float, scale: float) -> float:
    return value if key == "FPS" else value * scale


def _formats(table: pd.DataFrame, decimals: int) -> dict:
    """Column -> format string: ``decimals`` places, FPS always one, sequence counts none."""
    special = {"FPS": "{:.1f}", SEQUENCES: "{:.0f}"}
    return {c: special.get(_measure(c), f"{{:.{decimals}f}}") for c in table.columns}


def _measure(column) -> str:
    return column[-1] if isinstance(column, tuple) else column


def markdown(table: pd.DataFrame, decimals: int) -> str:
    """GitHub Markdown table (multi-level columns joined with a space, missing values as -)."""
    formats = _formats(table, decimals)
    headers = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in table.columns]
    lines = ["| " + " | ".join([str(table.index.name or "")] + headers) + " |",
             "|" + "---|" * (len(headers) + 1)]
    for name, row in table.iterrows():
        cells = ["-" if pd.isna(v) else formats[c].format(v) for c, v in row.items()]
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return "\n".join(lines) + "\n"


def latex(table: pd.DataFrame, decimals: int, caption: str) -> str:
    """booktabs table with LaTeX-escaped headers (``J&F``) and centred multi-level headers."""
    styler = table.rename_axis(None).style.format(_formats(table, decimals), na_rep="--")
    styler = styler.format_index(escape="latex", axis=1).format_index(escape="latex", axis=0)
    return styler.to_latex(caption=caption.replace("%", "\\%").replace("&", "\\&"), hrules=True,
                           multicol_align="c", position="t")


def write_table(table: pd.DataFrame, stem: Path, caption: str, decimals: int) -> None:
    """``stem``.csv, .md and .tex."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_text(stem.with_suffix(".csv"), table.to_csv())
    write_text(stem.with_suffix(".md"), f"**{caption}**\n\n" + markdown(table, decimals))
    write_text(stem.with_suffix(".tex"), latex(table, decimals, caption))


# What a curve plot draws: x label, y label, x range and the title's first words.
CURVE_PLOTS = {"success": ("Overlap threshold", "Success rate", (0, 1), "Success plots"),
               "precision": ("Location error threshold (pixels)", "Precision", (0, 50), "Precision plots"),
               "norm_precision": ("Normalised location error threshold", "Precision", (0, 0.5),
                                  "Normalised precision plots")}


def headline(benchmark: str, curve: str) -> str:
    """The score a curve plot ranks by and shows in its legend."""
    if curve == "success":
        return "AO" if benchmark == "got10k" else "Success"
    return {"precision": "Precision", "norm_precision": "Norm. Precision"}[curve]


def curve_plot(summaries: Sequence[Summary], stem: Path, caption: str, curve: str = "success") -> list[Path]:
    """``curve`` (success, precision or normalised precision) of each tracker, ranked by its
    headline score, which the legend shows where the summary has it, as PNG and PDF.
    Summaries without the curve (published numbers) are left out, each with a note on
    stderr; no file is written when none has it."""
    xlabel, ylabel, xlim, title = CURVE_PLOTS[curve]
    key = headline(summaries[0].benchmark, curve)
    ranked = _plotted(summaries, lambda s: curve in s.curves, f"{curve.replace('_', ' ')} curve", stem, key)
    if not ranked:
        return []
    labels = [_label(s, key) for s in ranked]
    beside = len(ranked) > 3 or max(map(len, labels)) > 24  # inside, such a legend hides the curves
    figure = Figure(figsize=(5 + (0.4 + 0.07 * max(map(len, labels)) if beside else 0), 4))
    axes = figure.add_subplot()
    for rank, (s, label) in enumerate(zip(ranked, labels)):  # past ten colours the line style changes
        axes.plot(s.curves[f"{curve}_x"], s.curves[curve], label=label, clip_on=False, zorder=3,
                  linestyle=LINE_STYLES[rank // 10 % len(LINE_STYLES)])  # a curve of 0 shows over the axis
    axes.set(xlabel=xlabel, ylabel=ylabel, xlim=xlim, ylim=(0, 1), title=f"{title} on {caption}")
    axes.grid(True)
    if beside:
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    else:
        axes.legend(loc="lower left" if curve == "success" else "lower right", fontsize=8)
    return _save(figure, stem)


def objects_plot(summaries: Sequence[Summary], stem: Path, caption: str) -> list[Path]:
    """J&F of each DAVIS object as horizontal bars, in % as the tables, one colour per tracker
    (ranked by their J&F), the objects sorted by the best-ranked tracker's score: where a
    tracker fails is what a mean hides. Summaries without per-object scores (published numbers, older
    summaries) are left out, each with a note on stderr; no file when none has them."""
    plotted = _plotted(summaries, lambda s: bool(s.per_object), "per-object scores", stem, "J&F")
    if not plotted:
        return []
    names = sorted({n for s in plotted for n in s.per_object},
                   key=lambda n: (-_finite(plotted[0].per_object.get(n), -1.0), n))
    one_object_each = all(n.endswith("_1") for n in names)  # DAVIS 2016: an object is its sequence
    return _bars(plotted, lambda s: s.per_object, names, [n[:-2] if one_object_each else n for n in names],
                 "J&F", f"J&F (%) per {'sequence' if one_object_each else 'object'} on {caption}", stem)


def attributes_plot(summaries: Sequence[Summary], stem: Path, caption: str) -> list[Path]:
    """LaSOT's or OTB's success (AUC) over the sequences of each attribute as horizontal bars, one
    colour per tracker (ranked by their success), the attributes in the toolkit's order.
    Summaries without them (scored without ``--toolkit-annos``, published numbers) are left
    out, each with a note on stderr; no file when none has them."""
    plotted = _plotted(summaries, lambda s: bool(s.per_attribute), "per-attribute scores", stem, "Success")
    if not plotted:
        return []
    names = list(dict.fromkeys(n for s in plotted for n in s.per_attribute))
    return _bars(plotted, lambda s: s.per_attribute, names, names, "Success",
                 f"Success (AUC) per attribute on {caption}", stem)


def _bars(plotted: Sequence[Summary], scores: Callable[[Summary], dict[str, float]], names: Sequence[str],
          labels: Sequence[str], key: str, title: str, stem: Path) -> list[Path]:
    """One row of bars per name, one bar per summary, scaled as the tables show the
    benchmark's scores, the legend above the bars (not on them)."""
    scale = DISPLAY[plotted[0].benchmark][0]
    unit, bar = " (%)" if scale == 100 else "", 0.8 / len(plotted)
    height = 0.12 * len(names) * (1 + len(plotted))
    # the legend above the bars takes a line a tracker: the bars keep their room under it
    figure = Figure(figsize=(6, max(1.2 + height, 1.0 + 0.2 * len(plotted) + 0.4 * len(names))))
    axes = figure.add_subplot()
    axes.set_axisbelow(True)  # the grid behind the bars
    for rank, s in enumerate(plotted):
        rows = [i for i, n in enumerate(names) if n in scores(s) and math.isfinite(scores(s)[n])]
        at = [i + (rank - (len(plotted) - 1) / 2) * bar for i in rows]
        values = [scores(s)[names[i]] * scale for i in rows]
        colour = f"C{rank % 10}"  # a tracker without a bar keeps its colour in the legend
        axes.barh(at, values, height=bar, label=_label(s, key), color=colour)
        nothing = [y for y, v in zip(at, values) if v < 0.005 * scale]  # a bar of no length: a score, not a gap
        if nothing:  # marked beside the axis line, where a mark on it was hidden
            axes.plot([0.012 * scale] * len(nothing), nothing, "|", color=colour, markersize=8,
                      markeredgewidth=2, clip_on=False)
    axes.set_yticks(range(len(names)), [shortened(label, 32) for label in labels], fontsize=7)
    axes.set(xlabel=f"{key}{unit}", xlim=(0, scale), ylim=(len(names) - 0.5, -0.5))
    if height > 8:  # a tall figure: its scale at the top too
        axes.tick_params(axis="x", top=True, labeltop=True)
    axes.grid(True, axis="x")
    axes.legend(title=title, title_fontsize=11, alignment="left", loc="lower left",
                bbox_to_anchor=(0, 1.03 if height > 8 else 1), fontsize=8, frameon=False)  # above a top scale
    return _save(figure, stem)


def _plotted(summaries: Sequence[Summary], has: Callable[[Summary], bool], what: str, stem: Path,
             key: str) -> list[Summary]:
    """The summaries that have what a plot draws, best ``key`` score first; where there are
    any, each of the others (published numbers, older summaries) gets a note on stderr that
    it is left out (where there are none, no plot is written to leave it out of)."""
    for s in summaries if any(map(has, summaries)) else ():
        if not has(s):
            print(f"samn report: note: the summary of {s.tracker} on {dataset_title(s.benchmark, s.split)} has "
                  f"no {what}; it is left out of {stem.name}.png/.pdf", file=sys.stderr)
    return sorted((s for s in summaries if has(s)), key=lambda s: _finite(s.scores.get(key), float("-inf")),
                  reverse=True)


def _finite(value: Optional[float], missing: float) -> float:
    """``value``, or ``missing`` where there is none or it is NaN: a NaN score ranks last."""
    return value if value is not None and math.isfinite(value) else missing


def _label(summary: Summary, key: str) -> str:
    """A legend entry: the tracker (a long name shortened) and, where its summary has it,
    its ``key`` score as the tables show it (``DISPLAY``; "–" for a NaN)."""
    name = shortened(summary.tracker, 40)
    if key not in summary.scores:
        return name
    scale, decimals = DISPLAY[summary.benchmark]
    value = summary.scores[key]
    return f"{name} [{value * scale:.{decimals}f}]" if math.isfinite(value) else f"{name} [–]"


def _save(figure: Figure, stem: Path) -> list[Path]:
    figure.tight_layout()
    return save_figure(figure, stem, dpi=200, bbox_inches="tight")  # a legend beside the axes included


def write_report(summaries: Sequence[Summary], out: Path) -> list[Path]:
    """All tables and plots for ``summaries`` (one per tracker, benchmark and split, as
    ``find_summaries`` gives them) under ``out``; returns the files written. A table whose
    trackers were scored on different sequences gets a warning on stderr."""
    out = Path(out)
    written: list[Path] = []
    groups: dict[tuple[str, str], dict[str, Summary]] = {}
    for s in summaries:
        group = groups.setdefault((s.benchmark, s.split), {})
        if s.tracker in group:
            raise ValueError(f"two summaries of {s.tracker} on {s.benchmark} {s.split}")
        group[s.tracker] = s
    for (benchmark, split), by_tracker in sorted(groups.items()):
        group = list(by_tracker.values())
        stem = out / f"{benchmark}_{split}"
        caption = dataset_title(benchmark, split)
        _warn_differing_sequences(group, caption)
        _warn_partial_split(group, caption)
        table = scores_table(group)
        decimals = DISPLAY[benchmark][1]
        write_table(table, stem, caption, decimals)
        written += [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
        print(f"{caption}\n\n{markdown(table, decimals)}")
        if benchmark in CURVES_PLOTTED:
            for curve in CURVES_PLOTTED[benchmark]:
                written += curve_plot(group, out / f"{benchmark}_{split}_{curve}", caption, curve)
            if benchmark in WITH_ATTRIBUTES:
                written += attributes_plot(group, out / f"{benchmark}_{split}_attributes", caption)
                attributes, attributes_stem = attributes_table(group), out / f"{benchmark}_{split}_attributes"
                if len(attributes):
                    write_table(attributes, attributes_stem, f"{caption}: success (AUC) per attribute", 3)
                    written += [attributes_stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
        else:
            written += objects_plot(group, out / f"{benchmark}_{split}_objects", caption)
    davis = [s for (b, _), g in groups.items() if b.startswith("davis") for s in g.values()]
    if davis:
        table = table_vii(davis)
        write_table(table, out / "davis_table_vii", "DAVIS (semi-supervised): J&F, J, F (%)", 1)
        written += [(out / "davis_table_vii").with_suffix(s) for s in (".csv", ".md", ".tex")]
        print(f"DAVIS (Table VII layout)\n\n{markdown(table, 1)}")
    return written


def _warn_differing_sequences(summaries: Sequence[Summary], caption: str) -> None:
    counts = differing_sequences(summaries)
    if counts:
        print(f"samn report: warning: on {caption} the trackers were scored on different sequences: "
              f"{listed_counts(counts)}; see the {SEQUENCES} column", file=sys.stderr)


def _warn_partial_split(summaries: Sequence[Summary], caption: str) -> None:
    for s in partial_split(summaries):
        print(f"samn report: warning: {s.tracker} on {caption} was scored on {len(s.sequences)} of its "
              f"{s.split_size} sequences (--sequences), not the whole split; see the {SEQUENCES} column",
              file=sys.stderr)


@guarded("samn report")
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = CommandParser(
        prog="samn report", epilog="""examples:
  samn report
  samn report results/got10k results/davis --out results/reports
  samn report results/got10k siamrpn.json   (published numbers typed as a summary JSON)
  samn report vot vot_workspace/vot2018/analysis/samn.json --out results/vot2018_report
  samn report bench results/bench""", description="Tables (Markdown/LaTeX/CSV) and success / precision plots (PNG/PDF) "
        "of several trackers from benchmark summaries; `samn report vot ...` and `samn report bench ...` "
        "make the VOT and speed reports.")
    parser.add_argument("inputs", nargs="*", default=["results"], type=Path,
                        help="summary JSON files or folders searched for summaries/*.json "
                             "(default: results)")
    parser.add_argument("--out", type=Path, default=Path("results/reports"),
                        help="output folder (default: results/reports)")
    args = parser.parse_args(argv)
    check_writable(args.out, args.out)
    summaries = find_summaries(args.inputs)
    written = write_report(summaries, args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
