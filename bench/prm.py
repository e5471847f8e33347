"""PRM scoring throughput per family on its tiny checkpoint: tokens/s and steps/s at batch sizes
1, 8 and 32, and the speed-up of batching over batch size 1.

    python bench/prm.py [--solutions 64] [--steps K] [--threads 1] [--device cpu]

``--steps K`` scores only each solution's first K steps (the short prefixes a beam search
scores early on).

Solutions are MATH-500 reference solutions cut into sentence steps ($TTS_EVAL_DATA_DIR, else
../shared/data).

``--search`` measures instead what the PRM spends per strategy (Best-of-N, beam search, DVTS at
N = 16) in the toy world, with the shipped small policy and toy PRM both on ``--backend`` (hf
or vllm): per problem, the tokens generated, the PRM tokens computed (reused prefixes excluded)
and scored (every input in full), their ratio to the generated tokens, and the wall time
against Best-of-N's. ``--no-reuse`` scores every candidate from scratch, as the search did
before prefix reuse.

    python bench/prm.py --search [--backend hf|vllm] [--first 350] [--problems 20] [--no-reuse]

Runs by hand; nothing here is a test. Wall times swing with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engines (--search --backend vllm)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tiny checkpoint builders

BATCH_SIZES = (1, 8, 32)


def solutions(count: int, max_steps: int | None = None) -> list[tuple[str, list[str]]]:
    data = Path(os.environ.get("TTS_EVAL_DATA_DIR", REPO.parent / "shared" / "data"))
    items = []
    with open(data / "math500" / "test.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            sentences = [s for s in re.split(r"(?<=\.)\s+", row["solution"].strip()) if s]
            steps = [s + "\n\n" for s in sentences[:-1]] + sentences[-1:]
            items.append((row["problem"], steps[:max_steps]))
            if len(items) == count:
                break
    return items


class FromScratch:
    """A PRM that scores every continuation as a whole solution (the search before prefix reuse)."""

    def __init__(self, prm) -> None:
        self.prm, self.name, self.num_parameters = prm, prm.name, prm.num_parameters

    def score_continuations(self, items):
        from prm_backends import Scored

        pairs = [(q, steps) for q, steps, _ in items]
        scores, tokens = self.prm.score_batch(pairs), self.prm.count_tokens(pairs)
        return [Scored(s, t, t) for s, t in zip(scores, tokens)]


def load_toy_models(backend: str, cache_tokens: int | None):
    from tts_eval.toy.evaluate import load_toy_policy, load_toy_prm

    if backend == "hf":
        options = {} if cache_tokens is None else {"runtime_options": {"prefix_cache_tokens": cache_tokens}}
        return load_toy_policy("small"), load_toy_prm(**options)
    engine = {"kv_cache_memory_bytes": 64 * 2**20, "enforce_eager": True, "block_size": 32}
    policy = load_toy_policy(
        "small",
        backend="vllm",
        dtype="float32",
        max_model_len=8192 + 512,
        **{**engine, "kv_cache_memory_bytes": 128 * 2**20},
    )
    return policy, load_toy_prm(runtime="vllm", runtime_options=engine)


def bench_search(args) -> None:
    """PRM tokens computed and scored per strategy in the toy world (see the module's doc)."""
    import torch

    from tts_eval import search
    from tts_eval.toy import load_test_problems
    from tts_eval.toy.evaluate import as_problems

    torch.set_num_threads(args.threads)
    policy, prm = load_toy_models(args.backend, args.prefix_cache_tokens)
    scorer = FromScratch(prm) if args.no_reuse else prm
    toy = load_test_problems()[args.first : args.first + args.problems]
    problems = as_problems(policy, toy)
    search(problems[:1], policy, scorer, strategy="beam_search", n=4, seed=1)  # warm-up
    print(
        f"toy test problems {args.first}-{args.first + len(toy)}, N={args.n}, M={args.beam_size}, seed {args.seed}, "
        f"min/prm_vote; policy and PRM on {args.backend}{', every candidate scored from scratch' if args.no_reuse else ''}"
    )
    print("per problem:")
    print(
        f"{'strategy':<12} {'generated':>9} {'PRM computed':>12} {'PRM scored':>10} {'computed/gen':>12} "
        f"{'scored/gen':>10} {'wall s':>7} {'wall/BoN':>8}"
    )
    walls = {}
    for strategy in ("best_of_n", "beam_search", "dvts"):
        start = time.perf_counter()
        results = search(
            problems,
            policy,
            scorer,
            strategy=strategy,
            n=args.n,
            beam_size=args.beam_size,
            aggregation="min",
            voting="prm_vote",
            seed=args.seed,
        )
        wall = walls[strategy] = time.perf_counter() - start
        count = len(results)
        generated = sum(r.usage.policy_output_tokens for r in results) / count
        computed = sum(r.usage.prm_tokens for r in results) / count
        scored = sum(r.usage.prm_scored_tokens for r in results) / count
        print(
            f"{strategy:<12} {generated:9.0f} {computed:12.0f} {scored:10.0f} {computed / generated:12.2f} "
            f"{scored / generated:10.2f} {wall:7.1f} {wall / walls['best_of_n']:8.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--solutions", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None, help="score only the first STEPS steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    search_options = parser.add_argument_group("--search: PRM tokens per strategy in the toy world")
    search_options.add_argument("--search", action="store_true")
    search_options.add_argument(
        "--backend", choices=["hf", "vllm"], default="hf", help="policy backend and PRM runtime"
    )
    search_options.add_argument("--first", type=int, default=350, help="index of the first toy test problem")
    search_options.add_argument("--problems", type=int, default=20)
    search_options.add_argument("--n", type=int, default=16)
    search_options.add_argument("--beam-size", type=int, default=4)
    search_options.add_argument("--seed", type=int, default=0)
    search_options.add_argument(
        "--prefix-cache-tokens", type=int, help="hf: the PRM's cache cap (default: the runtime's)"
    )
    search_options.add_argument("--no-reuse", action="store_true", help="score every candidate from scratch")
    args = parser.parse_args()
    if args.search:
        bench_search(args)
        return

    import torch
    from prm_fixtures import FAMILIES, load_tiny_prm

    torch.set_num_threads(args.threads)
    items = solutions(args.solutions, args.steps)
    steps = sum(len(s) for _, s in items)
    print(f"{len(items)} solutions, {steps} steps, device {args.device}, {args.threads} thread(s)")
    print(f"{'family':<18}{'batch':>6}{'tokens':>9}{'padding':>9}{'tokens/s':>11}{'steps/s':>10}{'vs batch 1':>12}")
    for family in FAMILIES:
        base = None
        for batch_size in BATCH_SIZES:
            prm = load_tiny_prm(family, batch_size=batch_size, device=args.device, max_length=4096)
            lengths = sorted(prm.count_tokens(items), reverse=True)  # the runtime's batching order
            tokens = sum(lengths)
            padded = sum(len(lengths[i : i + batch_size]) * lengths[i] for i in range(0, len(lengths), batch_size))
            prm.score_batch(items[:batch_size])  # warm-up
            start = time.perf_counter()
            prm.score_batch(items)
            seconds = time.perf_counter() - start
            base = base or seconds
            print(
                f"{family:<18}{batch_size:>6}{tokens:>9}{padded / tokens - 1:>9.0%}{tokens / seconds:>11.0f}"
                f"{steps / seconds:>10.0f}{base / seconds:>11.2f}x"
            )


if __name__ == "__main__":
    main()
