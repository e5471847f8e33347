"""Plots of the PRM analyses (:mod:`leaderboard.analyses`), saved as PNG and SVG like the
leaderboard's other plots:

- ``tts_vs_prm_quality``: accuracy against ProcessBench F1 (log x), one colour per group of
  runs that differ in the PRM only, with its fitted ``a·ln(F1) + b``; hollow markers: F1
  published, not measured;
- ``length_bias``: tokens per chosen solution of each PRM-guided run, beside the policy's own
  (CoT, majority) on the same problems;
- ``voting_sensitivity``: each PRM-guided run's accuracy under every aggregation x voting.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

from leaderboard.analyses import VOTING_COLUMNS, Analyses, _without_prm, column_name
from leaderboard.formatting import policy_label
from leaderboard.plots import STYLE, Plot
from tts_eval.strategies.names import MAJORITY

PLOTS = [
    Plot(
        "tts_vs_prm_quality",
        "TTS accuracy vs PRM ProcessBench F1",
        "Accuracy of PRM-guided runs against their PRM's ProcessBench F1 (log scale), with the fitted a·ln(F1) + b per "
        "setup; hollow markers: published F1, not measured here.",
    ),
    Plot(
        "length_bias",
        "Length bias of the PRMs",
        "Generated tokens per chosen solution of each PRM-guided run, beside the policy's own CoT and majority "
        "solutions on the same problems.",
    ),
    Plot(
        "voting_sensitivity",
        "Voting sensitivity",
        "Accuracy of each PRM-guided run's stored candidates under every aggregation/voting (percent).",
    ),
]


def write_analysis_plots(analyses: Analyses | None, folder: Path) -> list[Plot]:
    """The plots of the analyses that have data (none without analyses)."""
    if analyses is None:
        return []
    drawers = {
        "tts_vs_prm_quality": (analyses.quality, _quality),
        "length_bias": (analyses.lengths, _lengths),
        "voting_sensitivity": (analyses.voting, _voting),
    }
    written = []
    with rc_context(STYLE):
        for plot in PLOTS:
            data, draw = drawers[plot.name]
            if not data:
                continue
            figure = draw(analyses)
            figure.suptitle(plot.title)
            figure.savefig(folder / plot.png, dpi=110, metadata={"Software": None})
            figure.savefig(folder / plot.svg, metadata={"Date": None, "Creator": None})
            written.append(plot)
    return written


def _quality(analyses: Analyses) -> Figure:
    benchmarks = sorted({p.key.benchmark for p in analyses.quality})
    figure = Figure(figsize=(6.0 * len(benchmarks), 4.2), layout="constrained")
    axes = figure.subplots(1, len(benchmarks), squeeze=False)[0]
    fits = {f.group: f for f in analyses.fits}
    for ax, benchmark in zip(axes, benchmarks):
        groups = defaultdict(list)
        for point in analyses.quality:
            if point.key.benchmark == benchmark:
                groups[_without_prm(point.key)].append(point)
        for i, (group, points) in enumerate(sorted(groups.items(), key=lambda g: g[0].title())):
            color = f"C{i % 10}"
            for p in points:
                ax.scatter([p.f1.value], [p.accuracy], color=color, facecolors=color if p.f1.measured else "none", s=24)
                ax.annotate(
                    policy_label(p.key.prm or ""),
                    (p.f1.value, p.accuracy),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=6,
                )
            fit = fits.get(group)
            label = group.title(with_prm=False)
            if fit is not None:
                xs = np.geomspace(min(p.f1.value for p in points), max(p.f1.value for p in points), 50)
                ax.plot(xs, fit.a * np.log(xs) + fit.b, color=color, linewidth=1)
                label += f": {fit.a:.2f}·ln(F1) + {fit.b:.2f}"
            ax.plot([], [], color=color, marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("PRM ProcessBench F1 (%, log)")
        ax.set_ylabel(f"{benchmark} accuracy (%)")
        ax.set_title(benchmark)
        ax.legend(fontsize=7, loc="best")
    return figure


def _lengths(analyses: Analyses) -> Figure:
    entries = []  # (label, tokens, kind)
    seen_reference = set()
    for row in analyses.lengths:
        entries.append((f"{row.key.benchmark}: {row.key.title()}", row.tokens, "prm"))
        for kind, value in (("CoT", row.cot_tokens), (MAJORITY, row.majority_tokens)):
            reference = (row.key.benchmark, row.key.policy, kind, row.problems)
            if value is not None and reference not in seen_reference:
                seen_reference.add(reference)
                entries.append(
                    (
                        f"{row.key.benchmark}: {policy_label(row.key.policy)} {kind} ({row.problems} problems)",
                        value,
                        kind,
                    )
                )
    figure = Figure(figsize=(7.5, max(2.5, 0.3 * len(entries) + 1.2)), layout="constrained")
    ax = figure.subplots()
    colors = {"prm": "C0", "CoT": "C1", MAJORITY: "C2"}
    for i, (_label, value, kind) in enumerate(entries):
        ax.barh(i, value, color=colors[kind])
        ax.text(value, i, f" {value:.1f}", va="center", fontsize=6)
    ax.set_yticks(range(len(entries)), [e[0] for e in entries], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("generated tokens per chosen solution (blue: PRM-guided; orange: CoT; green: majority)")
    return figure


def _voting(analyses: Analyses) -> Figure:
    names = [column_name(v, a) for v, a in VOTING_COLUMNS]
    rows = analyses.voting
    values = np.array([[r.accuracy[n] for n in names] for r in rows])
    figure = Figure(figsize=(1.0 + 0.75 * len(names), max(2.2, 0.45 * len(rows) + 1.6)), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(
                j,
                i,
                f"{values[i, j]:.1f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if values[i, j] < values.mean() else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(
        range(len(rows)), [f"{r.key.benchmark}: {r.key.title()} (spread {r.spread:.1f})" for r in rows], fontsize=6
    )
    figure.colorbar(image, ax=ax, label="accuracy (%)")
    return figure
