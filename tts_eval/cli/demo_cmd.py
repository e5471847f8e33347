"""``tts-eval demo``: test-time scaling on the shipped toy world, offline, in minutes.

CoT on the largest toy policy against majority voting, Best-of-N, beam search and DVTS on the
smallest, at each budget, every run through the real lm-eval path (``tts-eval run`` on the
``arith_tts`` task), then a comparison table and the leaderboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# Settings of the PRM-guided runs (the toy world's best measured choice, docs/toy-world.md).
PRM_SETTINGS = {"aggregation": "last", "voting": "prm_vote"}
SMALL_STRATEGIES = ("majority", "best_of_n", "beam_search", "dvts")


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the lm-eval runs and the leaderboard.")] = Path("runs/demo"),
    limit: Annotated[int, typer.Option(help="Toy test problems per run.")] = 100,
    budgets: Annotated[list[int], typer.Option("--n", help="Budgets N (repeat the option).")] = [4, 16],
    beam_size: Annotated[int, typer.Option(help="Beam size M of beam search and DVTS.")] = 4,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Small policy + TTS against large policy + CoT on the offline toy world."""
    from rich.console import Console
    from rich.table import Table

    from tts_eval.lm_eval.runner import run_evaluation
    from tts_eval.toy import PRM_CONFIG, model_dir

    console = Console()
    policies = {"large": model_dir("policy-large"), "small": model_dir("policy-small")}
    plan = [("large", "cot", 1), ("small", "cot", 1)]
    plan += [("small", s, n) for n in budgets for s in SMALL_STRATEGIES]
    table = Table(title=f"Toy arithmetic, {limit} test problems (arith_tts)")
    for column in ("policy", "params", "strategy", "N", "accuracy", "pass@N", "tokens/problem", "FLOPs/problem"):
        table.add_column(column, justify="left" if column in ("policy", "strategy") else "right")
    run_dirs = []
    for size, strategy, n in plan:
        args = {"policy": str(policies[size]), "strategy": strategy, "n": n, "seed": seed}
        if strategy not in ("cot", "majority"):
            args |= {"prm": PRM_CONFIG, "beam_size": beam_size, **PRM_SETTINGS}
        run_dir = out / "runs" / f"{size}-{strategy}-n{n}"
        console.print(f"[bold]{size} policy, {strategy}, N={n}[/bold] -> {run_dir}")
        results = run_evaluation(args, ["arith_tts"], output_path=run_dir, log_samples=True, limit=limit)
        metrics = results["results"]["arith_tts"]
        params = results["config"]["model_num_parameters"]
        table.add_row(
            size, _count(params), strategy, str(n), f"{100 * metrics['acc,none']:.1f}%",
            f"{100 * metrics['pass_at_n,none']:.1f}%",
            f"{metrics['policy_tokens,none'] + metrics['prm_tokens,none']:.0f}", f"{metrics['flops,none']:.3g}",
        )
        run_dirs.append(run_dir)
    console.print(table)
    _write_leaderboard(console, run_dirs, out / "leaderboard")


def _write_leaderboard(console, run_dirs: list[Path], out: Path) -> None:
    import shutil

    from leaderboard import build_leaderboard

    if out.exists():
        shutil.rmtree(out)  # the demo's own output from an earlier run
    build_leaderboard(run_dirs, out)
    console.print(f"leaderboard written to {out}/leaderboard.md and {out}/leaderboard.html")


def _count(value: int) -> str:
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"
