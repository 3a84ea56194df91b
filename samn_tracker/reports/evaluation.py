"""Tables (Markdown / LaTeX / CSV) and success plots (PNG / PDF) of several trackers side by side.

Every scored run leaves a small JSON summary (benchmark, split, tracker, scores, success
curve) under ``<out>/.../summaries/``; ``samn report`` collects summaries and writes one
table per benchmark and split, success plots for the box benchmarks, and a DAVIS table
laid out like the paper's Table VII (J&F, J, F per dataset).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable, Optional, Sequence

import pandas as pd
from matplotlib.figure import Figure

from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.evaluation.summaries import Summary

# How scores are shown: multiplier and decimals (GOT-10k as its toolkit, DAVIS in percent).
DISPLAY = {"got10k": (1.0, 3), "trackingnet": (1.0, 1), "davis2016": (100.0, 1), "davis2017": (100.0, 1)}
TITLES = {"got10k": "GOT-10k", "trackingnet": "TrackingNet", "davis2016": "DAVIS 2016",
          "davis2017": "DAVIS 2017"}
TABLE_VII_MEASURES = ("J&F", "J-Mean", "F-Mean")


def find_summaries(paths: Iterable[Path]) -> list[Summary]:
    """Summaries from JSON files and from ``summaries/*.json`` anywhere below folders."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.json") if p.parent.name == "summaries")
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    if not files:
        raise InputError(f"no summaries found in {', '.join(map(str, paths))}")
    return [Summary.load(f) for f in files]


def scores_table(summaries: Sequence[Summary]) -> pd.DataFrame:
    """One row per tracker, one column per score, in display units."""
    scale, decimals = DISPLAY[summaries[0].benchmark]
    rows = {s.tracker: {k: _shown(k, v, scale) for k, v in s.scores.items()} for s in summaries}
    return pd.DataFrame.from_dict(rows, orient="index").round(decimals).rename_axis("Tracker")


def table_vii(summaries: Sequence[Summary]) -> pd.DataFrame:
    """DAVIS results with (dataset, measure) columns: J&F, J-Mean, F-Mean per dataset, in %."""
    columns = {}
    for s in sorted(summaries, key=lambda s: (s.benchmark, s.split)):
        dataset = f"{TITLES[s.benchmark]} {s.split}"
        for measure in TABLE_VII_MEASURES:
            columns.setdefault((dataset, measure), {})[s.tracker] = 100 * s.scores[measure]
    table = pd.DataFrame(columns).round(1)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table.rename_axis("Tracker")


def _shown(key: str, value: float, scale: float) -> float:
    return value if key == "FPS" else value * scale


def _formats(table: pd.DataFrame, decimals: int) -> dict:
    """Column -> format string: ``decimals`` places, FPS always one."""
    return {c: "{:.1f}" if _measure(c) == "FPS" else f"{{:.{decimals}f}}" for c in table.columns}


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
    from samn_tracker.atomic import write_text

    stem.parent.mkdir(parents=True, exist_ok=True)
    write_text(stem.with_suffix(".csv"), table.to_csv())
    write_text(stem.with_suffix(".md"), f"**{caption}**\n\n" + markdown(table, decimals))
    write_text(stem.with_suffix(".tex"), latex(table, decimals, caption))


def success_plot(summaries: Sequence[Summary], stem: Path, title: str) -> list[Path]:
    """Success curves with the headline score in the legend, as PNG and PDF."""
    benchmark = summaries[0].benchmark
    key = "AO" if benchmark == "got10k" else "Success"
    ranked = sorted(summaries, key=lambda s: s.scores[key], reverse=True)
    figure = Figure(figsize=(5, 4))
    axes = figure.add_subplot()
    for s in ranked:
        if "success" not in s.curves:
            raise InputError(f"summary of {s.tracker} on {benchmark} {s.split} has no success curve")
        axes.plot(s.curves["success_x"], s.curves["success"], label=f"{s.tracker} [{s.scores[key]:.3f}]")
    axes.set(xlabel="Overlap threshold", ylabel="Success rate", xlim=(0, 1), ylim=(0, 1), title=title)
    axes.grid(True)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        figure.savefig(path, dpi=200)
    return paths


def write_report(summaries: Sequence[Summary], out: Path) -> list[Path]:
    """All tables and plots for ``summaries`` under ``out``; returns the files written."""
    out = Path(out)
    written: list[Path] = []
    groups: dict[tuple[str, str], dict[str, Summary]] = {}
    for s in summaries:
        groups.setdefault((s.benchmark, s.split), {})[s.tracker] = s  # a later file wins
    for (benchmark, split), by_tracker in sorted(groups.items()):
        group = list(by_tracker.values())
        stem = out / f"{benchmark}_{split}"
        caption = f"{TITLES[benchmark]} {split}"
        table = scores_table(group)
        decimals = DISPLAY[benchmark][1]
        write_table(table, stem, caption, decimals)
        written += [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
        print(f"{caption}\n\n{markdown(table, decimals)}")
        if benchmark in ("got10k", "trackingnet"):
            written += success_plot(group, out / f"{benchmark}_{split}_success",
                                    f"Success plots on {caption}")
    davis = [s for (b, _), g in groups.items() if b.startswith("davis") for s in g.values()]
    if davis:
        table = table_vii(davis)
        write_table(table, out / "davis_table_vii", "DAVIS (semi-supervised): J&F, J, F (%)", 1)
        written += [(out / "davis_table_vii").with_suffix(s) for s in (".csv", ".md", ".tex")]
        print(f"DAVIS (Table VII layout)\n\n{markdown(table, 1)}")
    return written


@guarded("samn report")
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="samn report", description="Tables (Markdown/LaTeX/CSV) and success plots (PNG/PDF) "
        "of several trackers from benchmark summaries; `samn report vot ...` and `samn report bench ...` "
        "make the VOT and speed reports.")
    parser.add_argument("inputs", nargs="*", default=["results"], type=Path,
                        help="summary JSON files or folders searched for summaries/*.json "
                             "(default: results)")
    parser.add_argument("--out", type=Path, default=Path("results/reports"),
                        help="output folder (default: results/reports)")
    args = parser.parse_args(argv)
    written = write_report(find_summaries(args.inputs), args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
