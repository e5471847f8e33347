"""The toy world's final report: the claims of docs/toy-world.md measured on the held-out half
of the test split (problems 350-699, which no tuning read), with 95% intervals and verdicts.

    python bench/toy_heldout.py --out bench/toy_heldout.json --workers 4   # measure, then report
    python bench/toy_heldout.py --report bench/toy_heldout.json    # report a stored measurement

Measuring runs the shipped models through the real path (``load_policy``, ``load_prm``,
``tts_eval.search``; seed 0, temperature 0.7, beam size 4): greedy CoT of both policies,
Best-of-N (its candidates also give Pass@1, majority and pass@N) and DVTS on the small policy
at N = 16, and DVTS at N = 64. The output file holds every problem's outcome per
setup and the command that made it (an interrupted run started again with the same --out
keeps the setups it finished: each problem is seeded by itself); the report (``tts_eval.toy.claims``) recomputes the
intervals and verdicts from it, as ``tests/test_toy_world.py`` does.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from tts_eval import search
from tts_eval.toy import SPLITS, load_test_problems
from tts_eval.toy.claims import MeasuredSetups, report
from tts_eval.toy.evaluate import as_problems, is_right, load_toy_policy, load_toy_prm, sample_stats

# How the PRM is read: the reading measured best on the development half (docs/toy-world.md),
# also what tts_eval.search's defaults give the toy PRM.
READING = {"aggregation": "min", "voting": "prm_vote"}


def search_small(chunk: list[int], strategy: str, n: int, seed: int) -> list:
    """The small policy's PRM-guided ``strategy`` on held-out problems ``chunk`` (positions in
    the held-out half), in a worker process of its own."""
    torch.set_num_threads(1)
    toy = load_test_problems("heldout")
    small = load_toy_policy("small")
    problems = as_problems(small, [toy[i] for i in chunk])
    return search(problems, small, load_toy_prm(), strategy=strategy, n=n, beam_size=4, seed=seed, **READING)


def search_in_workers(count: int, strategy: str, n: int, seed: int, workers: int) -> list:
    """:func:`search_small` on the first ``count`` held-out problems, split into ``workers``
    interleaved chunks (each a mix of difficulties). Each problem is seeded by itself, so the
    split changes no outcome."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    chunks = [list(range(count))[w::workers] for w in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(search_small, chunks, [strategy] * workers, [n] * workers, [seed] * workers))
    results: list = [None] * count
    for chunk, part in zip(chunks, parts):
        for i, result in zip(chunk, part):
            results[i] = result
    return results


def measure(out: Path, n: int, large_n: int, seed: int, limit: int | None, workers: int) -> None:
    toy = load_test_problems("heldout")[:limit]
    indices = list(SPLITS["heldout"])[: len(toy)]
    small, large = load_toy_policy("small"), load_toy_policy("large")
    prm = load_toy_prm()
    reading = {**READING, "seed": seed}
    measured = MeasuredSetups(
        command="python " + shlex.join(sys.argv),
        problems=indices,
        difficulty=[p.difficulty for p in toy],
        outcomes={},
        seconds={},
    )
    if out.is_file():  # resume: every setup is seeded per problem, so finished ones stand
        earlier = MeasuredSetups.model_validate_json(out.read_text())
        if earlier.problems == indices:
            measured.outcomes, measured.seconds = earlier.outcomes, earlier.seconds

    def record(name: str, values: list[float], started: float) -> None:
        measured.outcomes[name] = [float(v) for v in values]
        measured.seconds[name] = round(time.time() - started, 1)
        out.write_text(measured.model_dump_json(indent=1) + "\n")  # partial results survive an interruption
        print(f"{name}: {sum(values) / len(values):.3f} in {measured.seconds[name]:.0f} s", flush=True)

    def right(results) -> list[bool]:
        return [is_right(p, r.answer) for p, r in zip(toy, results)]

    for size, policy in (("large", large), ("small", small)):
        if f"{size} CoT" in measured.outcomes:
            continue
        started = time.time()
        record(
            f"{size} CoT",
            right(search(as_problems(policy, toy), policy, strategy="cot", seed=seed, progress=True)),
            started,
        )
    problems = as_problems(small, toy)
    if f"best_of_n@{n}" not in measured.outcomes:
        started = time.time()
        best_of_n = search(problems, small, prm, strategy="best_of_n", n=n, progress=True, **reading)
        stats = [sample_stats(p, r) for p, r in zip(toy, best_of_n)]
        record("Pass@1", [s.pass_at_1 for s in stats], started)
        record(f"majority@{n}", [s.majority for s in stats], started)
        record(f"pass@{n}", [s.any_right for s in stats], started)
        record(f"best_of_n@{n}", right(best_of_n), started)
    for strategy, budget in (("dvts", n), ("dvts", large_n)):
        if f"{strategy}@{budget}" in measured.outcomes:
            continue
        started = time.time()
        if workers > 1:
            results = search_in_workers(len(toy), strategy, budget, seed, workers)
        else:
            results = search(problems, small, prm, strategy=strategy, n=budget, beam_size=4, progress=True, **reading)
        record(f"{strategy}@{budget}", right(results), started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="measure, writing every problem's outcomes here")
    parser.add_argument("--report", type=Path, help="report a file an earlier --out wrote")
    parser.add_argument("--n", type=int, default=16, help="budget N of the TTS setups")
    parser.add_argument("--large-n", type=int, default=64, help="the larger DVTS budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="only the first K held-out problems (a quick check)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="processes for the tree searches (same outcomes)")
    args = parser.parse_args()
    if (args.out is None) == (args.report is None):
        parser.error("give exactly one of --out (measure) and --report (a stored measurement)")
    torch.set_num_threads(args.threads)
    if args.out is not None:
        measure(args.out, args.n, args.large_n, args.seed, args.limit, args.workers)
    path = args.out or args.report
    print(report(MeasuredSetups.model_validate_json(path.read_text()), args.n, args.large_n))


if __name__ == "__main__":
    main()
