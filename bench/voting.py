"""Which voting and aggregation a PRM-guided Best-of-N should use by default, measured on the
offline toy world: one Best-of-N search of the small toy policy scored by the toy PRM, then
every reading of the same candidates (majority, and each PRM voting x aggregation).

    python bench/voting.py                          # first 56 problems (8 per difficulty), N = 16
    python bench/voting.py --problems 350 --n 4

The first 350 problems of the toy test split are its development half; the default reads
only its first 56, so the run stays small (a few minutes on two busy cores).
"""

from __future__ import annotations

import argparse
import time

import torch

from tts_eval import search
from tts_eval.scoring import AGGREGATIONS
from tts_eval.toy import load_test_problems
from tts_eval.toy.evaluate import as_problems, chosen_right, load_toy_policy, load_toy_prm, mean

DEVELOPMENT_HALF = 350


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=56, help="first K problems of the development half")
    parser.add_argument("--n", type=int, default=16, help="budget N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.problems <= DEVELOPMENT_HALF:
        parser.error(f"--problems must be between 1 and {DEVELOPMENT_HALF} (the development half of the test split)")
    torch.set_num_threads(args.threads)

    toy = load_test_problems()[: args.problems]
    policy, prm = load_toy_policy("small"), load_toy_prm()
    start = time.time()
    results = search(
        as_problems(policy, toy),
        policy,
        prm,
        strategy="best_of_n",
        n=args.n,
        seed=args.seed,
        voting="majority",
        aggregation="min",
    )
    seconds = time.time() - start
    print(
        f"Best-of-{args.n}, small toy policy + toy PRM, first {len(toy)} test problems, seed {args.seed} ({seconds:.0f} s)"
    )
    print(f"{'voting':<10} {'aggregation':<12} accuracy")
    readings = [("majority", "-")] + [(v, a) for v in ("prm_vote", "prm_max") for a in AGGREGATIONS]
    for voting, aggregation in readings:
        right = [chosen_right(p, r, voting, "min" if aggregation == "-" else aggregation) for p, r in zip(toy, results)]
        print(f"{voting:<10} {aggregation:<12} {mean(right):.3f} ({sum(right)}/{len(right)})")


if __name__ == "__main__":
    main()
