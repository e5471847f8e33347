"""Test-time scaling against PRM quality in the toy world (the paper's Q1), measured on the
shipped toy PRMs through the real path (``load_prm``, ``load_policy``, ``tts_eval.search``).

    python bench/prm_quality.py                          # 100 development problems, N = 16
    python bench/prm_quality.py --problems 35 --json out.json

For each PRM: its F1 on the toy ProcessBench (the ``processbench_toy`` task's data, threshold
0.5), and the small policy's Best-of-N accuracy with it (min / prm_vote) on the first K test
problems (the development half), each with a 95% bootstrap interval, and the paired
difference to the next PRM. Best-of-N samples its N solutions before any PRM reads them, so
the search runs once (with the first PRM) and every other PRM scores those same candidates
(``score_batch``) and votes (``tts_eval.voting.vote``), exactly as its own search would. It
ends by saying whether F1 orders the PRMs as their Best-of-N accuracy does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from prm_backends import load_prm, load_spec
from tts_eval import search
from tts_eval.jsonl import read_jsonl
from tts_eval.processbench import first_error, processbench_score
from tts_eval.toy import DEVELOPMENT_PROBLEMS, PROCESSBENCH_FILE, load_test_problems
from tts_eval.toy.evaluate import as_problems, is_right, load_toy_policy
from tts_eval.voting import vote

PRMS = ("toy-prm", "toy-prm-1000", "toy-prm-500", "toy-prm-200")
PRM_AGGREGATION, PRM_VOTING = "min", "prm_vote"  # the toy PRMs' reading (their specs' aggregation)
RESAMPLES = 10_000


def interval(values: np.ndarray, statistic, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``statistic`` over rows of ``values``."""
    draws = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(RESAMPLES)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def f1_of(pairs: np.ndarray) -> float:
    return processbench_score(pairs[:, 0].tolist(), pairs[:, 1].tolist()).f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--problems",
        type=int,
        default=100,
        help=f"first K test problems (at most {DEVELOPMENT_PROBLEMS}, the development half)",
    )
    parser.add_argument("--n", type=int, default=16, help="budget N")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument(
        "--prms", default=",".join(PRMS), help="comma-separated PRM names (default: the shipped toy PRMs)"
    )
    args = parser.parse_args()
    if not 1 <= args.problems <= DEVELOPMENT_PROBLEMS:
        parser.error(f"--problems must be 1 to {DEVELOPMENT_PROBLEMS}: the rest of the test split is held out")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    bench_rows = read_jsonl(PROCESSBENCH_FILE)
    toy = load_test_problems()[: args.problems]
    policy = load_toy_policy("small")
    problems = as_problems(policy, toy)
    print(
        f"toy ProcessBench: {len(bench_rows)} solutions; Best-of-{args.n} ({PRM_AGGREGATION}/{PRM_VOTING}) on "
        f"{len(toy)} development problems"
    )

    prms = args.prms.split(",")
    measured, correct_by_prm, results = {}, {}, None
    for name in prms:
        started = time.time()
        prm = load_prm(name)
        scores = prm.score_batch([(r["problem"], r["steps"]) for r in bench_rows])
        pairs = np.array([[r["label"], first_error(s, args.threshold)] for r, s in zip(bench_rows, scores)])
        score = processbench_score(pairs[:, 0].tolist(), pairs[:, 1].tolist())
        if results is None:
            results = search(
                problems,
                policy,
                prm,
                strategy="best_of_n",
                n=args.n,
                aggregation=PRM_AGGREGATION,
                voting=PRM_VOTING,
                seed=args.seed,
            )
            candidates = [r.candidates for r in results]
        else:  # the same candidates, read by this PRM
            flat = iter(prm.score_batch([(p.question, c.steps) for p, cs in zip(problems, candidates) for c in cs]))
            candidates = [[replace(c, step_scores=next(flat)) for c in cs] for cs in candidates]
        chosen = [cs[vote(cs, PRM_VOTING, PRM_AGGREGATION)] for cs in candidates]
        if name == prms[0] and [c.answer for c in chosen] != [r.answer for r in results]:
            raise SystemExit("re-voting the search's own candidates gave other answers than the search")
        correct = np.array([is_right(p, c.answer) for p, c in zip(toy, chosen)], dtype=float)
        correct_by_prm[name] = correct
        majority = np.mean([is_right(p, cs[vote(cs, "majority", "last")].answer) for p, cs in zip(toy, candidates)])
        pass1 = np.mean([np.mean([is_right(p, c.answer) for c in cs]) for p, cs in zip(toy, candidates)])
        measured[name] = {
            "prm": prm.name,
            "trained_steps": json.loads((Path(load_spec(name).model) / "training.json").read_text())["recipe"][
                "optimization"
            ]["steps"],
            "processbench": {
                "error_acc": score.error_acc,
                "correct_acc": score.correct_acc,
                "f1": score.f1,
                "f1_interval": interval(pairs, f1_of, rng),
                "erroneous": score.erroneous,
                "correct": score.correct,
            },
            "best_of_n": {"accuracy": float(correct.mean()), "interval": interval(correct, np.mean, rng)},
            "majority": float(majority),
            "pass_at_1": float(pass1),
            "seconds": round(time.time() - started, 1),
        }

    print()
    print(
        f"| PRM | classification steps | ProcessBench error acc | correct acc | F1 (95% CI) | Best-of-{args.n} acc (95% CI) |"
    )
    print("|---|---|---|---|---|---|")
    for name, m in measured.items():
        pb, bon = m["processbench"], m["best_of_n"]
        print(
            f"| {name} | {m['trained_steps']} | {pb['error_acc']:.3f} | {pb['correct_acc']:.3f} | {pb['f1']:.3f} "
            f"({pb['f1_interval'][0]:.3f}-{pb['f1_interval'][1]:.3f}) | {bon['accuracy']:.3f} "
            f"({bon['interval'][0]:.3f}-{bon['interval'][1]:.3f}) |"
        )
    first = measured[prms[0]]
    print(
        f"\nsame candidates for every PRM: majority@{args.n} {first['majority']:.3f}, Pass@1 {first['pass_at_1']:.3f}"
    )

    by_f1 = sorted(prms, key=lambda n: -measured[n]["processbench"]["f1"])
    differences, verdicts = {}, []
    for better, worse in itertools.pairwise(by_f1):
        diff = correct_by_prm[better] - correct_by_prm[worse]
        low, high = interval(diff, np.mean, rng)
        differences[f"{better} - {worse}"] = {"accuracy": float(diff.mean()), "interval": (low, high)}
        verdict = "agrees" if diff.mean() > 0 else "ties" if diff.mean() == 0 else "disagrees"
        verdicts.append(verdict)
        print(
            f"higher F1 {better} vs {worse}: Best-of-N {diff.mean():+.3f} (paired, 95% CI {low:+.3f} to {high:+.3f}): {verdict}"
        )
    same = all(v == "agrees" for v in verdicts)
    print(
        "F1 orders the PRMs as Best-of-N accuracy does"
        if same
        else "F1 does NOT order the PRMs strictly as Best-of-N accuracy does (see the pairs above)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": vars(args) | {"json": str(args.json)},
                    "prms": measured,
                    "differences": differences,
                    "same_order": same,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
