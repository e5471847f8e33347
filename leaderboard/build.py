"""From run folders to a finished leaderboard folder.

Everything is read and checked first; the outputs are then written into a fresh folder
beside ``out`` and moved into place at the end, so a failure leaves ``out`` as it was.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leaderboard.analyses import Analyses, build_analyses
from leaderboard.comparisons import Comparison, comparisons
from leaderboard.difficulty import pass_at_1
from leaderboard.errors import LeaderboardError
from leaderboard.grading import grade_candidates
from leaderboard.reference import ModelBook, load_params, load_reference
from leaderboard.rows import PUBLISHED, Row, apply_model_facts, derived_rows, measured_row, merge_rows, published_rows
from leaderboard.runs import read_runs
from leaderboard.tokens import count_tokens_of_other_models
from tts_eval.estimators import DEFAULT_MAX_SUBSETS
from tts_eval.strategies import table_order

OUTPUT_MARKER = "leaderboard.json"  # an existing --out folder holding it may be replaced


@dataclass
class Leaderboard:
    rows: list[Row]
    pass1: dict[tuple[str, str], dict[str, float]]  # (policy, benchmark) -> problem -> Pass@1
    runs: list[str] = field(default_factory=list)
    reference_source: str | None = None
    max_subsets: int = DEFAULT_MAX_SUBSETS
    seed: int = 0
    comparisons: list[Comparison] = field(default_factory=list)  # paired, on shared problems
    grading_failures: int = 0  # (gold, answer) pairs judged wrong because no verdict came
    analyses: Analyses | None = None  # PRM quality, length bias, voting sensitivity


def collect(
    run_dirs: Sequence[Path],
    *,
    reference: Path | None = None,
    use_reference: bool = True,
    all_reference: bool = False,
    params: Path | None = None,
    max_subsets: int = DEFAULT_MAX_SUBSETS,
    seed: int = 0,
    processbench: Sequence[Path] = (),
) -> Leaderboard:
    """Read every run, derive the curves and attach the published figures: only those on
    benchmarks the runs measured, unless ``all_reference``. ``processbench``: folders of
    ProcessBench runs of the ``prm`` model, for the PRM analyses."""
    if not run_dirs:
        raise LeaderboardError("no run folders given; pass the folders that lm_eval --output_path wrote")
    if max_subsets < 1:
        raise LeaderboardError(f"--subsets must be at least 1, got {max_subsets}")
    ref = load_reference(reference) if use_reference else None
    user = load_params(params) if params is not None else None
    runs = read_runs(run_dirs)
    grading_failures = grade_candidates(runs)
    for run in runs:
        if run.settings.model_source != "tts":
            count_tokens_of_other_models(run)
    rows: list[Row] = []
    for run in runs:
        rows.append(measured_row(run))
        rows += derived_rows(run, max_subsets=max_subsets, seed=seed)
    rows = merge_rows(rows)
    published = []
    if ref is not None:
        covered = None if all_reference else {b for r in rows for b in r.scores}
        published = published_rows(ref, covered)
        rows += published
    apply_model_facts(rows, ModelBook(*(f for f in (user, ref) if f is not None)))
    rows = sorted(rows, key=_row_order)
    return Leaderboard(
        rows=rows,
        comparisons=comparisons(rows),
        pass1=pass_at_1(runs),
        runs=[str(r.results_file) for r in runs],
        reference_source=ref.source if ref is not None and published else None,
        max_subsets=max_subsets,
        seed=seed,
        grading_failures=grading_failures,
        analyses=build_analyses(runs, processbench),
    )


def _row_order(row: Row) -> tuple:
    s = row.setup
    strategy = table_order(s.strategy)
    return (
        row.kind == PUBLISHED,
        row.method if row.kind == PUBLISHED else "",
        row.policy_params if row.policy_params is not None else math.inf,
        s.policy,
        strategy,
        s.prm or "",
        s.voting or "",
        s.aggregation or "",
        s.beam_size or 0,
        s.n or 0,
    )


def build_leaderboard(
    run_dirs: Sequence[Path],
    out: Path,
    *,
    reference: Path | None = None,
    use_reference: bool = True,
    all_reference: bool = False,
    params: Path | None = None,
    max_subsets: int = DEFAULT_MAX_SUBSETS,
    seed: int = 0,
    processbench: Sequence[Path] = (),
) -> Leaderboard:
    """Write ``leaderboard.md``, ``leaderboard.json``, ``leaderboard.html`` and the plots
    (PNG and SVG) to ``out``."""
    out = Path(out)
    _check_out(out)
    board = collect(
        run_dirs,
        reference=reference,
        use_reference=use_reference,
        all_reference=all_reference,
        params=params,
        max_subsets=max_subsets,
        seed=seed,
        processbench=processbench,
    )
    write_leaderboard(board, out)
    return board


def write_leaderboard(board: Leaderboard, out: Path) -> None:
    from leaderboard.analysis_plots import write_analysis_plots
    from leaderboard.html import render_html
    from leaderboard.jsonout import render_json
    from leaderboard.markdown import render_markdown
    from leaderboard.plots import write_plots

    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        staging.chmod(_folder_mode())  # mkdtemp makes it private; the board is an ordinary folder
        plots = write_plots(board, staging) + write_analysis_plots(board.analyses, staging)
        (staging / "leaderboard.md").write_text(render_markdown(board, plots), encoding="utf-8")
        (staging / "leaderboard.json").write_text(render_json(board, plots), encoding="utf-8")
        (staging / "leaderboard.html").write_text(render_html(board, plots, staging), encoding="utf-8")
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _folder_mode() -> int:
    """The mode ``mkdir`` would give a new folder under the user's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LeaderboardError(f"--out {out}: exists and is not a folder; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / OUTPUT_MARKER).is_file():
        raise LeaderboardError(
            f"--out {out}: the folder holds other files and no earlier leaderboard; give a new or empty folder"
        )


def _move_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` (absent, empty, or an earlier leaderboard) by ``staging``."""
    if not out.exists():
        staging.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{staging.name}")
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
