"""The leaderboard's plots, each saved as PNG and SVG.

- ``accuracy_vs_n``: accuracy against the budget N (log2) per curve (policy, PRM, strategy,
  voting), pass@k dotted, each with its 95% interval as a shaded band;
- ``accuracy_vs_flops``: accuracy against inference FLOPs per problem (log), with the CoT
  accuracy of larger models (measured, or published in Table 3) as horizontal lines;
- ``accuracy_by_difficulty``: per benchmark, each task's grade (MATH levels 1-5, the toy
  task's operations), and the Pass@1 buckets where known;
- ``small_vs_large``: the paper's Figure 1: each small policy's best TTS setup against
  larger policies with CoT;
- ``frontier``: the compute-optimal frontier (:mod:`leaderboard.headline`), every setup as a
  point and the frontier as a step line, the larger policies' CoT as stars.

Every plot draws a strategy in one colour (its ``Strategy.colour``), measured points filled
and derived ones hollow, and puts its legend below the axes, never over the data. Figures are
drawn on matplotlib's ``Figure`` directly (Agg canvas), never through pyplot's global state.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib import rc_context
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from leaderboard import formatting as fmt
from leaderboard.benchmarks import GRADE_NAMES, MATH500
from leaderboard.difficulty import BUCKETS, accuracy_by_bucket, accuracy_by_level, grades
from leaderboard.headline import frontier, matchups
from leaderboard.rows import ANY_FINAL, MEASURED, PASS_AT_K, PUBLISHED, Row, Setup
from leaderboard.table import best_tts_rows, difficulty_rows, row_title, series_key, shown_benchmarks, tts_candidates
from tts_eval.strategies import is_baseline, table_order, traits
from tts_eval.voting import MAJORITY_VOTE

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

STYLE: dict[RcKeyType, Any] = {"svg.hashsalt": "tts-eval-leaderboard", "svg.fonttype": "none", "font.size": 9}
REFERENCE_TABLE = "Table 3"  # published CoT lines: the paper's frontier models
HEADLINE_PLOT = "frontier"  # drawn in the headline section, not among the other plots
# One colour per strategy in every plot (colour-blind-safe Tableau hues); grey: CoT.
# (Each strategy declares its colour: Strategy.colour.)
OTHER_COLOUR = "#8c564b"
# One marker shape per voting, so curves of one strategy stay apart.
VOTING_HATCHES: dict[str | None, str] = {"prm_max": "//", MAJORITY_VOTE: ".."}
VOTING_MARKERS = {None: "o", MAJORITY_VOTE: "o", "prm_vote": "s", "prm_max": "^", PASS_AT_K: "x", ANY_FINAL: "x"}


def strategy_colour(strategy: str) -> str:
    found = traits(strategy)
    return found.colour if found is not None else OTHER_COLOUR


def _marker(row: Row) -> str:
    return VOTING_MARKERS.get(row.setup.voting, "D")


def _face(row: Row, colour: str) -> str:
    """Measured points filled, derived ones hollow."""
    return colour if row.kind == MEASURED else "white"


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    description: str

    @property
    def png(self) -> str:
        return f"{self.name}.png"

    @property
    def svg(self) -> str:
        return f"{self.name}.svg"


def write_plots(board, folder: Path) -> list[Plot]:
    benchmarks = shown_benchmarks(board.rows) or [MATH500]
    drawers = [
        (
            Plot(
                "accuracy_vs_n",
                "Accuracy vs budget N",
                "Accuracy against N (log2) per policy, PRM, strategy and voting, shaded: 95% interval; pass@k dotted.",
            ),
            _accuracy_vs_n,
        ),
        (
            Plot(
                "accuracy_vs_flops",
                "Accuracy vs inference FLOPs",
                "Accuracy against inference FLOPs per problem (log), shaded: 95% interval; horizontal lines: CoT of larger models.",
            ),
            _accuracy_vs_flops,
        ),
        (
            Plot(
                "accuracy_by_difficulty",
                "Accuracy by difficulty",
                "Accuracy by each task's difficulty grade (MATH level, toy operations) and by the policy's Pass@1 bucket (easy >= 50%, medium 10-50%, hard < 10%).",
            ),
            _accuracy_by_difficulty,
        ),
        (
            Plot(
                "small_vs_large",
                "Small policy + TTS vs large policy + CoT",
                "Each small policy's best TTS setup against larger policies with CoT (whiskers: 95% interval; hatched: published).",
            ),
            _small_vs_large,
        ),
        (
            Plot(
                HEADLINE_PLOT,
                "Compute-optimal frontier",
                "Every measured (filled) and derived (hollow) setup by inference FLOPs per problem; the line: the best setup within each budget, with its 95% intervals; stars: larger policies' CoT.",
            ),
            _frontier,
        ),
    ]
    plots = []
    with rc_context(STYLE):
        for plot, draw in drawers:
            figure = draw(board, benchmarks)
            figure.suptitle(plot.title)
            # "tight": whatever the layout could not fit (a very long label) is kept, not cut.
            figure.savefig(folder / plot.png, dpi=110, bbox_inches="tight", metadata={"Software": None})
            figure.savefig(folder / plot.svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
            plots.append(plot)
    return plots


def figures(board) -> dict[str, Figure]:
    """Every plot's figure by name, drawn but not saved (for checks of their layout)."""
    benchmarks = shown_benchmarks(board.rows) or [MATH500]
    drawers = {
        "accuracy_vs_n": _accuracy_vs_n,
        "accuracy_vs_flops": _accuracy_vs_flops,
        "accuracy_by_difficulty": _accuracy_by_difficulty,
        "small_vs_large": _small_vs_large,
        HEADLINE_PLOT: _frontier,
    }
    with rc_context(STYLE):
        return {name: draw(board, benchmarks) for name, draw in drawers.items()}


def tts_policies(rows: list[Row]) -> set[str]:
    """Policies with measured or derived rows of a strategy other than CoT."""
    return {r.setup.policy for r in rows if r.kind != PUBLISHED and not is_baseline(r.setup.strategy)}


def _curves(rows: list[Row], benchmark: str, x_of) -> dict[Setup, list[tuple[float, float, Row]]]:
    """Curves of the TTS policies (their CoT rows included, as single points)."""
    policies = tts_policies(rows)
    curves: dict[Setup, list[tuple[float, float, Row]]] = defaultdict(list)
    for row in rows:
        if row.kind == PUBLISHED or row.setup.policy not in policies or benchmark not in row.scores:
            continue
        x = x_of(row)
        if x is None:
            continue
        curves[series_key(row.setup)].append((x, 100.0 * row.scores[benchmark].accuracy, row))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in curves.items()}


def _draw_curves(ax, curves, benchmark: str) -> None:
    """Each curve in its strategy's colour and its voting's marker, measured points filled,
    derived ones hollow; oracles dotted; the 95% interval as a band where every point has one."""
    for key, points in curves.items():
        xs, ys, rows = zip(*points)
        oracle = fmt.is_oracle(rows[0])
        colour = strategy_colour(key.strategy)
        label = row_title(rows[0]).rsplit(" · N=", 1)[0]
        ax.plot(
            xs,
            ys,
            linestyle=":" if oracle else "-",
            color=colour,
            label=label,
            alpha=0.6 if oracle else 1.0,
            marker=_marker(rows[0]),
            markersize=4,
            markerfacecolor="none",
            markeredgecolor=colour,
        )
        for x, y, row in points:
            ax.plot(
                [x],
                [y],
                linestyle="none",
                marker=_marker(row),
                markersize=4,
                color=colour,
                markerfacecolor=_face(row, colour),
                clip_on=False,
            )
        intervals = [row.interval(benchmark) for row in rows]
        if all(i is not None for i in intervals):
            ax.fill_between(
                xs,
                [100.0 * i.low for i in intervals],
                [100.0 * i.high for i in intervals],
                color=colour,
                alpha=0.08 if oracle else 0.15,
                linewidth=0,
            )


def _panels(benchmarks: list[str], width: float = 6.0, height: float = 4.2) -> tuple[Figure, list]:
    figure = Figure(figsize=(width * len(benchmarks), height), layout="constrained")
    axes = figure.subplots(1, len(benchmarks), squeeze=False)[0]
    return figure, list(axes)


def _kind_handles() -> list[Line2D]:
    return [
        Line2D([], [], linestyle="none", marker="o", color="0.3", markerfacecolor="0.3", label="measured"),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            color="0.3",
            markerfacecolor="white",
            label="derived (from a larger run)",
        ),
    ]


def _figure_legend(figure: Figure, extra: list | None = None) -> None:
    """One legend for every panel, below them (outside every axes), entries deduplicated."""
    handles: dict[str, Artist] = {}
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if not label.startswith("_"):
                handles.setdefault(label, handle)
    for handle in extra or []:
        handles.setdefault(handle.get_label(), handle)
    if handles:
        items = list(handles.items())  # every curve: the figure grows rather than drop one
        # As many columns as fit the figure's width (7-pt text: about 0.06 in per character).
        widest = max(len(label) for label, _ in items) * 0.06 + 0.5
        columns = max(1, min(4, len(items), int(figure.get_figwidth() // widest)))
        rows = -(-len(items) // columns)
        figure.set_figheight(figure.get_figheight() + 0.16 * rows)  # the axes keep their height
        figure.legend(
            [h for _, h in items],
            [label for label, _ in items],
            loc="outside lower center",
            ncols=columns,
            fontsize=7,
            frameon=False,
        )


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, wrap=True)


def _accuracy_vs_n(board, benchmarks: list[str]) -> Figure:
    figure, axes = _panels(benchmarks)
    for ax, benchmark in zip(axes, benchmarks):
        curves = _curves(board.rows, benchmark, lambda r: float(r.setup.n))
        _draw_curves(ax, curves, benchmark)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget N (log2)")
        ax.set_ylabel(f"{benchmark} accuracy (%)")
        ax.set_title(benchmark)
        if not curves:
            _no_data(ax, "no measured runs")
    _figure_legend(figure, _kind_handles())
    return figure


def _accuracy_vs_flops(board, benchmarks: list[str]) -> Figure:
    figure, axes = _panels(benchmarks)
    for ax, benchmark in zip(axes, benchmarks):
        curves = _curves(board.rows, benchmark, lambda r, b=benchmark: r.flops(b))
        _draw_curves(ax, curves, benchmark)
        for row in reference_cot_rows(board.rows, benchmark):
            published = row.kind == PUBLISHED
            accuracy = 100.0 * row.known_accuracy(benchmark)
            ax.axhline(accuracy, linestyle=":" if published else "--", linewidth=0.9, color="0.35")
            interval = None if published else row.interval(benchmark)
            if interval is not None:
                ax.axhspan(100.0 * interval.low, 100.0 * interval.high, color="0.35", alpha=0.08, linewidth=0)
            if not published and row.flops(benchmark) is not None:
                ax.plot([row.flops(benchmark)], [accuracy], marker="*", color="0.2", markersize=8)
            label = f"{fmt.policy_label(row.setup.policy)} CoT" + (" (published)" if published else "")
            ax.annotate(
                label,
                (1.0, accuracy),
                xycoords=("axes fraction", "data"),
                xytext=(-2, 2),
                textcoords="offset points",
                ha="right",
                fontsize=6,
                color="0.25",
            )
        if curves:
            ax.set_xscale("log")
        else:
            _no_data(ax, "no run with known FLOPs (parameter counts and tokens)")
        ax.set_xlabel("inference FLOPs per problem (log)")
        ax.set_ylabel(f"{benchmark} accuracy (%)")
        ax.set_title(benchmark)
    _figure_legend(figure, _kind_handles())
    return figure


def reference_cot_rows(rows: list[Row], benchmark: str) -> list[Row]:
    """CoT rows of policies without TTS rows that are larger than every TTS policy (or of
    unknown size); published ones from Table 3 only."""
    policies = tts_policies(rows)
    largest = max((r.policy_params or 0 for r in rows if r.setup.policy in policies), default=0)
    found = []
    for row in rows:
        if not is_baseline(row.setup.strategy) or row.setup.policy in policies or row.accuracy(benchmark) is None:
            continue
        if row.kind == PUBLISHED and row.method != REFERENCE_TABLE:
            continue
        if row.policy_params is None or row.policy_params > largest:
            found.append(row)
    return found


def _accuracy_by_difficulty(board, benchmarks: list[str]) -> Figure:
    """One row of two panels per benchmark with difficulty data: accuracy by the task's own
    grade, and by the policy's Pass@1 bucket; accuracies in percent."""
    panels = [(b, [r for r in difficulty_rows(board.rows) if b in r.scores]) for b in benchmarks]
    panels = [(b, rows) for b, rows in panels if rows] or [(benchmarks[0], [])]
    figure = Figure(figsize=(12.0, 4.2 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 2, squeeze=False)
    for (benchmark, chosen), (level_ax, bucket_ax) in zip(panels, axes):
        _by_grade(level_ax, benchmark, chosen)
        _by_bucket(bucket_ax, benchmark, chosen, board.pass1.get)
    _figure_legend(figure)
    return figure


def _by_grade(ax, benchmark: str, chosen: list[Row]) -> None:
    grade = GRADE_NAMES.get(benchmark, "level")
    levels = grades(chosen, benchmark)
    for row in chosen:
        by_level = accuracy_by_level(row, benchmark)
        if by_level:
            colour = strategy_colour(row.setup.strategy)
            ax.plot(
                list(by_level),
                [100.0 * a for a, _ in by_level.values()],
                marker=_marker(row),
                markersize=4,
                color=colour,
                markerfacecolor=_face(row, colour),
                label=row_title(row),
                clip_on=False,
            )  # points at 0% and 100% stay whole
    if levels:
        ax.set_xticks(levels)
    else:
        _no_data(ax, f"no {benchmark} problems with a {grade}")
    _percent_axis(ax, benchmark)
    ax.set_xlabel(grade)
    ax.set_title(f"{benchmark}: by {grade}")


def _by_bucket(ax, benchmark: str, chosen: list[Row], pass1_of) -> None:
    bucketed, missing = [], []
    for row in chosen:
        pass1 = pass1_of((row.setup.policy, benchmark))
        by_bucket = accuracy_by_bucket(row, benchmark, pass1) if pass1 else {}
        if by_bucket:
            bucketed.append((row, by_bucket))
        elif fmt.policy_label(row.setup.policy) not in missing:
            missing.append(fmt.policy_label(row.setup.policy))
    width = 0.8 / max(1, len(bucketed))
    for i, (row, by_bucket) in enumerate(bucketed):
        xs = [j + i * width for j, b in enumerate(BUCKETS) if b in by_bucket]
        ys = [100.0 * by_bucket[b][0] for b in BUCKETS if b in by_bucket]
        ax.bar(
            xs,
            ys,
            width=width,
            label=row_title(row),
            color=strategy_colour(row.setup.strategy),
            edgecolor="white",
            hatch=VOTING_HATCHES.get(row.setup.voting),
        )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(BUCKETS))], [b.capitalize() for b in BUCKETS])
    _percent_axis(ax, benchmark)
    ax.set_title(f"{benchmark}: by the policy's Pass@1 bucket")
    if not bucketed:
        who = ", ".join(missing) or "the policy"
        _no_data(ax, f"no Pass@1 per problem for {who}: add a sampled Best-of-N or majority run of it on {benchmark}")


def _percent_axis(ax, benchmark: str) -> None:
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"{benchmark} accuracy (%)")


def figure1_entries(rows: list[Row], benchmark: str) -> list[tuple[str, float, Row]]:
    """(label, accuracy %, row) for Figure 1: each policy's best TTS row (measured or
    derived, pass@k left out) and every CoT row of a larger or unknown-size policy, plus
    the published Table 3 rows."""
    best = best_tts_rows(rows, benchmark)  # the headline's choice
    smallest = min((r.policy_params for r in best.values() if r.policy_params is not None), default=0.0)
    entries = [(row_title(r), 100.0 * r.known_accuracy(benchmark), r) for r in best.values()]
    for row in rows:
        if row.accuracy(benchmark) is None:
            continue
        if row.kind == PUBLISHED:
            if row.method == REFERENCE_TABLE:
                entries.append((row_title(row), 100.0 * row.known_accuracy(benchmark), row))
        elif is_baseline(row.setup.strategy) and (row.policy_params is None or row.policy_params > smallest):
            entries.append((row_title(row), 100.0 * row.known_accuracy(benchmark), row))
    return sorted(entries, key=lambda e: e[1])


def _small_vs_large(board, benchmarks: list[str]) -> Figure:
    per_panel = [figure1_entries(board.rows, b) for b in benchmarks]
    height = max(3.0, 0.28 * max((len(e) for e in per_panel), default=1) + 1.2)
    figure, axes = _panels(benchmarks, width=6.5, height=height)
    for ax, benchmark, entries in zip(axes, benchmarks, per_panel):
        for i, (_label, value, row) in enumerate(entries):
            published = row.kind == PUBLISHED
            interval = None if published else row.interval(benchmark)
            whisker = None if interval is None else [[value - 100.0 * interval.low], [100.0 * interval.high - value]]
            ax.barh(
                i,
                value,
                xerr=whisker,
                capsize=2,
                error_kw={"linewidth": 0.8},
                color=strategy_colour(row.setup.strategy),
                alpha=0.45 if published else 0.9,
                hatch="//" if published else None,
            )
            ax.text(value, i, f" {value:.1f}", va="center", fontsize=6)
        ax.set_yticks(
            range(len(entries)), [f"{label} [{fmt.parameters(r.policy_params)}]" for label, _, r in entries], fontsize=6
        )
        ax.set_xlabel(f"{benchmark} accuracy (%)")
        ax.set_title(benchmark)
        ax.set_xlim(0, 100)
        if not entries:
            _no_data(ax, "no rows")
    strategies = sorted({r.setup.strategy for e in per_panel for _, _, r in e}, key=table_order)
    _figure_legend(
        figure,
        _strategy_handles(strategies)
        + [Patch(facecolor="white", edgecolor="0.3", hatch="//", label="published, not measured here")],
    )
    return figure


def _frontier(board, benchmarks: list[str]) -> Figure:
    """Per benchmark: every measured and derived setup (pass@k left out) by FLOPs, the
    frontier as a step line with its 95% intervals, and the larger policies' measured CoT."""
    figure, axes = _panels(benchmarks)
    for ax, benchmark in zip(axes, benchmarks):
        points = [r for r in tts_candidates(board.rows, benchmark) if r.flops(benchmark) is not None]
        best = frontier(board.rows, benchmark)
        for row in points:
            colour = strategy_colour(row.setup.strategy)
            ax.plot(
                [row.flops(benchmark)],
                [100.0 * row.scores[benchmark].accuracy],
                linestyle="none",
                marker=_marker(row),
                markersize=5,
                color=colour,
                markerfacecolor=_face(row, colour),
                alpha=0.85,
                clip_on=False,
            )
        if best:
            xs = [r.flops(benchmark) for r in best]
            ys = [100.0 * r.scores[benchmark].accuracy for r in best]
            ax.step(xs, ys, where="post", color="black", linewidth=1.2, label="frontier: best within each budget")
            intervals = [i for r in best if (i := r.interval(benchmark)) is not None]
            if len(intervals) == len(best):
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[
                        [y - 100.0 * i.low for y, i in zip(ys, intervals)],
                        [100.0 * i.high - y for y, i in zip(ys, intervals)],
                    ],
                    fmt="none",
                    ecolor="black",
                    elinewidth=0.8,
                    capsize=2,
                    label="95% interval",
                )
            ax.set_xscale("log")
        else:
            _no_data(ax, "no run with known FLOPs (parameter counts and tokens)")
        large = {m.large.setup.policy: m.large for m in matchups(board.rows, benchmark) if m.large.kind != PUBLISHED}
        for row in large.values():
            if row.flops(benchmark) is not None:
                ax.plot(
                    [row.flops(benchmark)],
                    [100.0 * row.scores[benchmark].accuracy],
                    linestyle="none",
                    marker="*",
                    markersize=11,
                    color="black",
                    markerfacecolor="gold",
                    label=f"{fmt.policy_label(row.setup.policy)} CoT (larger policy)",
                    clip_on=False,
                )
        ax.set_ylim(0, 100)
        ax.set_xlabel("inference FLOPs per problem (log)")
        ax.set_ylabel(f"{benchmark} accuracy (%)")
        ax.set_title(benchmark)
    strategies = sorted({r.setup.strategy for b in benchmarks for r in tts_candidates(board.rows, b)}, key=table_order)
    _figure_legend(figure, _strategy_handles(strategies) + _kind_handles())
    return figure


def _strategy_handles(strategies: list[str]) -> list[Patch]:
    return [Patch(color=strategy_colour(s), label=fmt.strategy_name(s)) for s in strategies]
