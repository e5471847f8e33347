"""Per strategy at N=16 on a tiny random transformers policy: wall seconds, generated
tokens/s, the ratio of the search's wall time to one plain batched ``generate`` of the same
number of tokens, and the ``hf`` backend's slot utilisation (generated tokens / (forward
steps x batch width), independent of the hardware) and host time per decoding step (the
step's work outside the model's forward: sampling, stop strings, refills).

With ``--memory``: peak memory of a search against the number of problems, in waves of at
most ``--max-problems`` problems (toy models; each count in a fresh process).

    python bench/search.py [--problems 8] [--n 16] [--batch-size 8]
    python bench/search.py --memory [--counts 50,100,200] [--max-problems 25]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from prm_fixtures import load_tiny_prm  # noqa: E402
from tiny_models import build_causal_lm, char_tokenizer, corpus_from_data  # noqa: E402

from tts_eval import Problem, load_policy, search  # noqa: E402
from tts_eval.policies.hf_decoding import DecodeStats  # noqa: E402


def plain_generate_seconds(policy, prompts: list[str], rows_per_prompt: int, tokens: int) -> float:
    """One batched HF ``generate`` producing ``tokens`` tokens in all, EOS ignored."""
    model, tok = policy.model, policy.tokenizer
    tok.padding_side = "left"
    rows = len(prompts) * rows_per_prompt
    length = max(1, math.ceil(tokens / rows))
    batch = tok(
        [p for p in prompts for _ in range(rows_per_prompt)],
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
    )
    start = time.perf_counter()
    with torch.no_grad():
        model.generate(
            **batch,
            do_sample=True,
            temperature=0.7,
            max_new_tokens=length,
            min_new_tokens=length,
            pad_token_id=tok.pad_token_id,
        )
    return time.perf_counter() - start


def strategies(args) -> None:
    data = Path(os.environ.get("TTS_EVAL_DATA_DIR", REPO.parent / "shared" / "data"))
    corpus = corpus_from_data(data)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_causal_lm(
            Path(tmp) / "policy", char_tokenizer(corpus), arch="llama", token_logits={"\n": 2.0}
        )
        policy = load_policy(str(model_dir), backend="hf", batch_size=args.batch_size)
        prm = load_tiny_prm("token_classifier")
        questions = [line for line in corpus[0::2][: args.problems]]
        problems = [Problem(q, policy.format_prompt(q)) for q in questions]
        print(
            f"{args.problems} MATH-500 problems, N={args.n}, M={args.beam_size}, batch_size={args.batch_size}, "
            f"torch threads {torch.get_num_threads()}"
        )
        print(
            f"{'strategy':<12} {'wall s':>8} {'gen tok':>8} {'tok/s':>8} {'plain s':>8} {'ratio':>6} "
            f"{'steps':>6} {'util':>5} {'host ms/step':>12} {'fwd ms/step':>11}"
        )
        for strategy in ("best_of_n", "majority", "beam_search", "dvts"):
            uses_prm = strategy != "majority"
            policy.stats = DecodeStats()
            start = time.perf_counter()
            results = search(
                problems,
                policy,
                prm if uses_prm else None,
                strategy=strategy,
                n=args.n,
                beam_size=args.beam_size,
                seed=0,
                max_tokens=256,
                max_step_tokens=64,
            )
            wall = time.perf_counter() - start
            generated = sum(r.usage.policy_output_tokens for r in results)
            plain = plain_generate_seconds(policy, [p.prompt for p in problems], args.n, generated)
            s = policy.stats
            print(
                f"{strategy:<12} {wall:8.2f} {generated:8d} {generated / wall:8.0f} {plain:8.2f} {wall / plain:6.2f} "
                f"{s.steps:6d} {s.utilisation:5.2f} {s.host_ms_per_step:12.2f} "
                f"{1000 * s.forward_seconds / max(s.steps, 1):11.2f}"
            )


def memory_child(count: int, max_problems: int) -> None:
    """One search of ``count`` toy problems; prints its peaks as JSON."""
    import resource

    from tts_eval.toy import load_test_problems
    from tts_eval.toy.evaluate import as_problems, load_toy_policy, load_toy_prm

    policy, prm = load_toy_policy("small"), load_toy_prm()
    problems = as_problems(policy, load_test_problems()[:count])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    results = search(
        problems,
        policy,
        prm,
        strategy="beam_search",
        n=16,
        seed=0,
        max_tokens=64,
        max_step_tokens=24,
        max_problems=max_problems or None,
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept = sum(len(t.steps) for r in results for t in r.candidates)
    print(
        json.dumps(
            {
                "count": count,
                "python_peak_mib": peak / 2**20,
                "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_before_mib": before / 1024,
                "kept_steps": kept,
            }
        )
    )


def memory(args) -> None:
    """Peaks with waves of ``--max-problems`` problems and with every problem in lock-step."""
    print(
        f"beam_search N=16 on toy problems: peaks with waves of at most {args.max_problems} problems, "
        "and with all problems in lock-step"
    )
    print(
        f"{'problems':>8} {'kept steps':>11} {'python peak MiB':>16} {'(lock-step)':>12} "
        f"{'RSS peak - start MiB':>21} {'(lock-step)':>12}"
    )
    for count in (int(c) for c in args.counts.split(",")):
        rows = []
        for cap in (args.max_problems, 0):
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(count), str(cap)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        waves, lock = rows
        print(
            f"{count:8d} {waves['kept_steps']:11d} {waves['python_peak_mib']:16.1f} {lock['python_peak_mib']:12.1f} "
            f"{waves['rss_peak_mib'] - waves['rss_before_mib']:21.0f} {lock['rss_peak_mib'] - lock['rss_before_mib']:12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8, help="hf backend slots (fewer than problems x N)")
    parser.add_argument("--memory", action="store_true", help="peak memory against the number of problems")
    parser.add_argument("--counts", default="50,100,200")
    parser.add_argument("--max-problems", type=int, default=25)
    parser.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.memory_child:
        memory_child(*args.memory_child)
    elif args.memory:
        memory(args)
    else:
        strategies(args)


if __name__ == "__main__":
    main()
