"""``tts-eval demo``: test-time scaling on the shipped toy world, offline, in minutes.

CoT on the largest toy policy against majority voting, Best-of-N, beam search and DVTS on the
smallest, at each budget N, every run an lm-eval evaluation of the ``tts`` model on the
``arith_tts_heldout`` task (the held-out half of the toy test split, which no tuning read; as
``tts-eval run`` does); then a comparison table with 95% intervals, each small-policy run
compared with the large policy's CoT on the same problems (paired), and the leaderboard.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tts_eval.strategies.names import BEAM_SEARCH, BEST_OF_N, COT, DVTS, MAJORITY
from tts_eval.voting import MAJORITY_VOTE

if TYPE_CHECKING:
    from rich.table import Table

SMALL_STRATEGIES = (MAJORITY, BEST_OF_N, BEAM_SEARCH, DVTS)
TASK = "arith_tts_heldout"  # test problems 350-699 (tts_eval.toy.SPLITS)
# Marks a folder as the demo's own output, which a later demo may replace.
OUTPUT_MARKER = ".tts-eval-demo"
# The whole held-out half: 50 problems of each difficulty (the split cycles through 2-8
# operations). About 8 minutes with one thread on a busy 2-core machine.
DEFAULT_LIMIT = 350


@dataclass(frozen=True)
class DemoRun:
    size: str  # "small" | "large" toy policy
    strategy: str
    n: int

    @property
    def label(self) -> str:
        return f"{self.size}-{self.strategy}-n{self.n}"


# A run, lm-eval's results dict, seconds, and each metric's per-problem values (in doc order).
RunRecord = tuple[DemoRun, dict[str, Any], float, dict[str, list[float]]]
ACCURACIES = ("acc", "candidate_acc", "maj_acc", "pass_at_n")
TABLE_COLUMNS = (
    "policy",
    "strategy",
    "N",
    "accuracy",
    "vs large CoT",
    "Pass@1",
    "pass@N",
    "final-candidate accuracy",
    "any final candidate correct",
    MAJORITY_VOTE,
    "tokens",
    "FLOPs",
    "seconds",
)


def demo_plan(budgets: list[int]) -> list[DemoRun]:
    """CoT on both policies (the large one is the baseline), then every strategy on the small
    one at each budget."""
    plan = [DemoRun("large", COT, 1), DemoRun("small", COT, 1)]
    return plan + [DemoRun("small", strategy, n) for n in budgets for strategy in SMALL_STRATEGIES]


def model_args(run: DemoRun, *, beam_size: int, seed: int) -> dict[str, object]:
    """The ``tts`` model's settings for one run (the shipped models, the shipped PRM). Voting
    and aggregation are left to the defaults a user gets: prm_vote, with the aggregation the
    toy PRM's spec recommends."""
    from tts_eval.strategies import get_strategy
    from tts_eval.toy import PRM_CONFIG, package_reference

    args: dict[str, object] = {
        "policy": package_reference(f"policy-{run.size}"),
        "strategy": run.strategy,
        "n": run.n,
        "seed": seed,
    }
    if get_strategy(run.strategy).tree:
        args["beam_size"] = beam_size
    if get_strategy(run.strategy).needs_prm:
        args["prm"] = PRM_CONFIG
    return args


def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the lm-eval runs and the leaderboard (new, empty, or an earlier demo's).")
    ] = Path("runs/demo"),
    limit: Annotated[
        int,
        typer.Option(
            min=2,
            max=DEFAULT_LIMIT,
            help="Held-out toy problems per run (the first ones; the split cycles through 2-8 operations; intervals need 2).",
        ),
    ] = DEFAULT_LIMIT,
    budgets: Annotated[list[int], typer.Option("--n", min=1, help="Budgets N (repeat the option).")] = [4, 16],  # noqa: B006 - typer reads the default, nothing mutates it
    beam_size: Annotated[
        int, typer.Option(min=1, help="Beam size M of beam search and DVTS (each N must be a multiple).")
    ] = 4,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    threads: Annotated[
        int, typer.Option(min=1, help="CPU threads for torch (1 is fastest for models this small).")
    ] = 1,
) -> None:
    """Small policy + TTS against large policy + CoT on the offline toy world, through lm-eval."""
    import torch
    from rich.console import Console

    from leaderboard import build_leaderboard
    from tts_eval.lm_eval.runner import RunError, run_evaluation
    from tts_eval.lm_eval.settings import ModelArgsError
    from tts_eval.resources import PackagePathError

    bad = [n for n in budgets if n % beam_size]
    if bad:
        _fail(
            f"--n {', '.join(map(str, bad))}: beam search and DVTS need N to be a multiple of the beam size {beam_size}"
        )
    torch.set_num_threads(threads)
    _quiet_libraries()
    console = Console(width=None if sys.stdout.isatty() else 220)  # logs get the whole table
    _prepare(out)
    plan = demo_plan(sorted(set(budgets)))
    rows: list[RunRecord] = []
    started = time.perf_counter()
    for index, run in enumerate(plan, 1):
        run_dir = out / "runs" / run.label
        console.print(f"[bold]\\[{index}/{len(plan)}] {run.size} policy, {run.strategy}, N={run.n}[/bold]")
        start = time.perf_counter()
        try:
            results = run_evaluation(
                model_args(run, beam_size=beam_size, seed=seed),
                [TASK],
                output_path=run_dir,
                log_samples=True,
                limit=limit,
            )
        except (RunError, ModelArgsError, PackagePathError) as err:  # e.g. the shipped models are missing
            _fail(str(err))
        rows.append((run, results, time.perf_counter() - start, per_problem(run_dir)))
    console.print(comparison_table(rows, limit))
    console.print(verdict_line(rows))
    build_leaderboard([out / "runs"], out / "leaderboard")  # published MATH/AIME figures: no run measures them
    console.print(f"{len(plan)} runs in {time.perf_counter() - started:.0f} s")
    console.print(f"lm-eval output: {out / 'runs'}")
    console.print(f"leaderboard: {out / 'leaderboard'} (leaderboard.md, leaderboard.html, leaderboard.json, plots)")
    console.print(f"rebuild it: {rebuild_command(out)}", soft_wrap=True)


def rebuild_command(out: Path) -> str:
    """The command that rebuilds the demo's leaderboard from its lm-eval output."""
    return f"tts-eval leaderboard {shlex.quote(str(out))} --out {shlex.quote(str(out / 'leaderboard'))}"


def _quiet_libraries() -> None:
    """Keep the demo's output to its own progress lines: no weight-loading bars, and only
    lm-eval's errors (its per-run notes say nothing about the toy world)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    logging.getLogger("lm_eval").setLevel(logging.ERROR)


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


def _prepare(out: Path) -> None:
    """Make ``out`` ready: new or empty, or an earlier demo's output, whose runs are replaced."""
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: exists and is not a folder; give a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / OUTPUT_MARKER).is_file():
            _fail(f"--out {out}: the folder holds other files and no earlier demo; give a new or empty folder")
        shutil.rmtree(out / "runs", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUTPUT_MARKER).write_text("written by tts-eval demo; a later demo replaces this folder's runs\n")


def per_problem(run_dir: Path) -> dict[str, list[float]]:
    """Each accuracy metric's per-problem values from the run's samples file, in doc order."""
    from tts_eval.jsonl import read_jsonl

    (samples_file,) = run_dir.glob(f"*/samples_{TASK}_*.jsonl")
    samples = sorted(read_jsonl(samples_file), key=lambda sample: sample["doc_id"])
    return {metric: [float(sample[metric]) for sample in samples] for metric in ACCURACIES}


def comparison_table(rows: list[RunRecord], limit: int) -> Table:
    from rich.table import Table

    from tts_eval.statistics import accuracy_interval, paired_difference, verdict
    from tts_eval.strategies import get_strategy
    from tts_eval.toy import SPLITS

    first = SPLITS["heldout"].start
    table = Table(title=f"Toy arithmetic ({TASK}): held-out test problems {first}-{first + limit - 1}")
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="left" if column in ("policy", "strategy") else "right", no_wrap=True)
    large = next(values["acc"] for run, _, _, values in rows if run.size == "large")
    for run, results, seconds, values in rows:
        metrics = results["results"][TASK]
        shown = {m: _with_interval(metrics[f"{m},none"], accuracy_interval(values[m])) for m in ACCURACIES}
        versus = ""
        if run.size == "small":
            difference = paired_difference(values["acc"], large)
            versus = f"{_difference(difference)}\n{verdict(difference)}"
        share, any_right = shown["candidate_acc"], shown["pass_at_n"]
        # A tree search's candidates are its final beams, not independent samples of the
        # policy: their share of right answers is no Pass@1.
        sampled = (
            (share, any_right, "—", "—")
            if get_strategy(run.strategy).independent_samples
            else ("—", "—", share, any_right)
        )
        table.add_row(
            f"{run.size} ({_count(results['config']['model_num_parameters'])})",
            run.strategy,
            str(run.n),
            shown["acc"],
            versus,
            *sampled,
            shown["maj_acc"],
            f"{metrics['policy_tokens,none'] + metrics['prm_tokens,none']:.0f}",
            f"{metrics['flops,none']:.2g}",
            f"{seconds:.0f}",
        )
    table.caption = (
        "accuracy: the strategy's answer. vs large CoT: the paired difference from the large policy's CoT in points; "
        '"beats" only when its interval lies above zero. Pass@1 and pass@N (CoT, majority, Best-of-N: independent '
        "samples of the policy): share of right samples, and whether any is right. Beam search and DVTS: the same over "
        "their final candidates. majority: majority vote over the same candidates. Brackets: 95% bootstrap intervals "
        "over problems. tokens and FLOPs: per problem, policy and PRM together"
    )
    return table


def verdict_line(rows: list[RunRecord]) -> str:
    """One line comparing the large policy's CoT with the small policy's best TTS run, paired
    on the same problems: "beats" only when the difference's interval lies above zero."""
    from tts_eval.statistics import accuracy_interval, paired_difference, verdict
    from tts_eval.strategies import get_strategy

    accuracy = {run: (results["results"][TASK]["acc,none"], values["acc"]) for run, results, _, values in rows}
    large_run = next(run for run in accuracy if run.size == "large")
    large, large_values = accuracy[large_run]
    best = max(
        (run for run in accuracy if run.size == "small" and not get_strategy(run.strategy).single_sample),
        key=lambda r: accuracy[r][0],
    )
    value, values = accuracy[best]
    difference = paired_difference(values, large_values)
    return (
        f"best small-policy TTS run, {best.strategy} at N={best.n}: "
        f"{_with_interval(value, accuracy_interval(values), sep=' ')}, {verdict(difference)} the large policy's CoT: "
        f"{_with_interval(large, accuracy_interval(large_values), sep=' ')} (difference {_difference(difference)} points, "
        f"paired over {len(values)} held-out problems)"
    )


def _with_interval(value: float, interval, sep: str = "\n") -> str:
    return f"{_percent(value)}{sep}[{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def _difference(interval) -> str:
    return f"{100 * interval.estimate:+.1f} [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _count(value: int) -> str:
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"
