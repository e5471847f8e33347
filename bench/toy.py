"""Test-time scaling in the offline toy world, measured on the shipped models through the real
path (``load_policy`` + ``load_prm`` + ``tts_eval.search``), with the issue's targets checked.

    python bench/toy.py                      # the 350 problems of the development half, N = 16
    python bench/toy.py --problems 100 --json out.json

Prints, for the small policy: greedy CoT, Pass@1 and pass@N of its N samples, majority@N,
PRM Best-of-N for each aggregation/voting, beam search@N, DVTS@N and particle filtering@N;
for the large policy: greedy CoT; each by difficulty bucket; then 95% bootstrap intervals
(over problems) of the PRM strategies' accuracy, and the targets, met or missed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from tts_eval import search
from tts_eval.statistics import accuracy_interval
from tts_eval.strategies.particle_filtering import vote_particles
from tts_eval.toy import load_test_problems
from tts_eval.toy.evaluate import (
    BON_VARIANTS,
    as_problems,
    chosen_right,
    difficulty_buckets,
    hardest_third,
    is_right,
    load_toy_policy,
    load_toy_prm,
    mean,
    sample_stats,
    variant_name,
)

TREE_VOTINGS = [
    ("last", "prm_max"),
    ("last", "prm_vote"),
    ("min", "prm_max"),
    ("min", "prm_vote"),
    ("last", "majority"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--problems",
        type=int,
        default=350,
        help="first K problems of the development half of the test split (balanced by difficulty)",
    )
    parser.add_argument("--n", type=int, default=16, help="budget N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest for these tiny models on a busy machine)"
    )
    parser.add_argument("--json", type=Path, help="write the table, checks and timings here")
    parser.add_argument(
        "--models", type=Path, help="a models folder written by `tts-eval toy train` (default: the shipped models)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    toy = load_test_problems("development")[: args.problems]  # never the held-out half: see bench/toy_heldout.py
    small, large = load_toy_policy("small", args.models), load_toy_policy("large", args.models)
    prm = load_toy_prm(args.models)
    print(
        f"policies: small {small.num_parameters:,} / large {large.num_parameters:,} parameters "
        f"({large.num_parameters / small.num_parameters:.1f}x); PRM {prm.num_parameters:,}; {len(toy)} problems, N = {args.n}"
    )
    problems_small, problems_large = as_problems(small, toy), as_problems(large, toy)
    runs, seconds = {}, {}

    def run(name, policy, problems, **kwargs):
        start = time.time()
        runs[name] = search(problems, policy, kwargs.pop("prm", None), seed=args.seed, progress=True, **kwargs)
        seconds[name] = time.time() - start

    run("cot-small", small, problems_small, strategy="cot")
    run("cot-large", large, problems_large, strategy="cot")
    run("best_of_n", small, problems_small, prm=prm, strategy="best_of_n", n=args.n)
    run("beam_search", small, problems_small, prm=prm, strategy="beam_search", n=args.n)
    run("dvts", small, problems_small, prm=prm, strategy="dvts", n=args.n)
    run("particle_filtering", small, problems_small, prm=prm, strategy="particle_filtering", n=args.n)

    stats = [sample_stats(p, r) for p, r in zip(toy, runs["best_of_n"])]
    pass1 = [s.pass_at_1 for s in stats]
    columns: dict[str, list[float]] = {
        "greedy (large)": [is_right(p, r.answer) for p, r in zip(toy, runs["cot-large"])],
        "greedy": [is_right(p, r.answer) for p, r in zip(toy, runs["cot-small"])],
        "Pass@1": pass1,
        f"maj@{args.n}": [s.majority for s in stats],
    }
    for agg, voting in BON_VARIANTS:
        columns[f"BoN {variant_name(agg, voting)}"] = [s.best_of_n[variant_name(agg, voting)] for s in stats]
    for tree in ("beam_search", "dvts"):
        for agg, voting in TREE_VOTINGS:
            columns[f"{tree} {variant_name(agg, voting)}"] = [
                chosen_right(p, r, voting, agg) for p, r in zip(toy, runs[tree])
            ]
    for agg, voting in TREE_VOTINGS:  # weights at the search's default pf_temperature, 1
        columns[f"particle_filtering {variant_name(agg, voting)}"] = [
            is_right(p, r.candidates[vote_particles(r.candidates, voting, agg, 1.0)].answer)
            for p, r in zip(toy, runs["particle_filtering"])
        ]
    columns[f"pass@{args.n} (oracle)"] = [s.any_right for s in stats]

    buckets = difficulty_buckets(pass1)
    hard_third = hardest_third(pass1, [p.difficulty for p in toy])
    groups = {
        "all": [True] * len(toy),
        "easy": [b == "easy" for b in buckets],
        "medium": [b == "medium" for b in buckets],
        "hard": [b == "hard" for b in buckets],
        "hardest third": hard_third,
        "2-4 ops": [p.difficulty <= 4 for p in toy],
        "6-8 ops": [p.difficulty >= 6 for p in toy],
    }
    table = {
        g: {c: mean([v for v, keep in zip(vals, mask) if keep]) for c, vals in columns.items()}
        for g, mask in groups.items()
    }
    print()
    header = (
        "| strategy (small policy unless noted) | " + " | ".join(f"{g} ({sum(m)})" for g, m in groups.items()) + " |"
    )
    print(header)
    print("|" + "---|" * (len(groups) + 1))
    for c in columns:
        print(f"| {c} | " + " | ".join(f"{table[g][c]:.3f}" for g in groups) + " |")
    print()
    for name, s in seconds.items():
        u = runs[name]
        tokens = sum(r.usage.policy_output_tokens for r in u)
        print(
            f"{name}: {s:.0f}s, {tokens / len(u):.0f} policy output tokens per problem, "
            f"{sum(r.usage.prm_tokens for r in u) / len(u):.0f} PRM tokens computed "
            f"(of {sum(r.usage.prm_scored_tokens for r in u) / len(u):.0f} scored) per problem"
        )

    print()
    intervals = {}
    for c in (c for c in columns if c.startswith(("BoN ", "beam_search ", "dvts ", "particle_filtering "))):
        interval = accuracy_interval(columns[c])  # tts_eval.statistics: the project's one bootstrap
        intervals[c] = [interval.low, interval.high]
        print(
            f"{c}: {table['all'][c]:.3f}, 95% bootstrap interval over problems [{intervals[c][0]:.3f}, {intervals[c][1]:.3f}]"
        )

    best_bon = max((c for c in columns if c.startswith("BoN ")), key=lambda c: table["all"][c])
    best_beam = max((c for c in columns if c.startswith("beam_search ")), key=lambda c: table["all"][c])
    tts_columns = [c for c in columns if c.startswith(("BoN ", "beam_search ", "dvts ", "maj@"))]
    best_tts = max(tts_columns, key=lambda c: table["all"][c])
    a = table["all"]
    n = args.n
    checks = [
        ("smallest policy greedy in [0.20, 0.55]", 0.20 <= a["greedy"] <= 0.55, f"{a['greedy']:.3f}"),
        (
            f"pass@{n} >= 1.6 x Pass@1",
            a[f"pass@{n} (oracle)"] >= 1.6 * a["Pass@1"],
            f"{a[f'pass@{n} (oracle)']:.3f} vs 1.6 x {a['Pass@1']:.3f}",
        ),
        (f"maj@{n} >= Pass@1 + 0.05", a[f"maj@{n}"] >= a["Pass@1"] + 0.05, f"{a[f'maj@{n}']:.3f} vs {a['Pass@1']:.3f}"),
        (
            f"best PRM BoN@{n} ({best_bon[4:]}) >= maj@{n} + 0.05",
            a[best_bon] >= a[f"maj@{n}"] + 0.05,
            f"{a[best_bon]:.3f} vs {a[f'maj@{n}']:.3f}",
        ),
        (
            f"beam search@{n} ({best_beam[12:]}) >= BoN@{n} on the hardest third",
            table["hardest third"][best_beam] >= table["hardest third"][best_bon],
            f"{table['hardest third'][best_beam]:.3f} vs {table['hardest third'][best_bon]:.3f}",
        ),
        (
            f"small + best TTS@{n} ({best_tts}) > large greedy",
            a[best_tts] > a["greedy (large)"],
            f"{a[best_tts]:.3f} vs {a['greedy (large)']:.3f}",
        ),
    ]
    strategies = {
        f"maj@{n}": f"maj@{n}",
        "best_of_n": best_bon,
        "beam_search": best_beam,
        "dvts": max((c for c in columns if c.startswith("dvts ")), key=lambda c: table["all"][c]),
        "particle_filtering": max(
            (c for c in columns if c.startswith("particle_filtering ")), key=lambda c: table["all"][c]
        ),
    }
    rankings = {}
    for g in ("easy", "hard", "2-4 ops", "6-8 ops"):
        rankings[g] = sorted(strategies, key=lambda s: -table[g][strategies[s]])
    print()
    for g, r in rankings.items():
        print(f"ranking on {g}: " + " > ".join(f"{s} ({table[g][strategies[s]]:.3f})" for s in r))
    differs = rankings["easy"] != rankings["hard"]
    print(
        "the ranking of strategies "
        + ("differs" if differs else "does NOT differ")
        + " between the easy and the hard bucket"
    )
    print()
    for name, ok, detail in checks:
        print(f"[{'met' if ok else 'MISSED'}] {name}: {detail}")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "table": table,
                    "checks": [(c, bool(o), d) for c, o, d in checks],
                    "rankings": rankings,
                    "seconds": seconds,
                    "intervals": intervals,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
