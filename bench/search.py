"""Per strategy at N=16 on a tiny random transformers policy: wall seconds, generated
tokens/s, and the ratio of the search's wall time to one plain batched ``generate`` of the
same number of tokens (how much the step-wise search costs over raw sampling).

    python bench/search.py [--problems 8] [--n 16]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from prm_fixtures import load_tiny_prm  # noqa: E402
from tiny_models import build_causal_lm, char_tokenizer, corpus_from_data  # noqa: E402
from tts_eval import Problem, load_policy, search  # noqa: E402


def plain_generate_seconds(policy, prompts: list[str], rows_per_prompt: int, tokens: int) -> float:
    """One batched HF ``generate`` producing ``tokens`` tokens in all, EOS ignored."""
    model, tok = policy.model, policy.tokenizer
    tok.padding_side = "left"
    rows = len(prompts) * rows_per_prompt
    length = max(1, math.ceil(tokens / rows))
    batch = tok([p for p in prompts for _ in range(rows_per_prompt)], return_tensors="pt", padding=True,
                add_special_tokens=False)
    start = time.perf_counter()
    with torch.no_grad():
        model.generate(**batch, do_sample=True, temperature=0.7, max_new_tokens=length, min_new_tokens=length,
                       pad_token_id=tok.pad_token_id)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--beam-size", type=int, default=4)
    args = parser.parse_args()
    data = Path(os.environ.get("TTS_EVAL_DATA_DIR", REPO.parent / "shared" / "data"))
    corpus = corpus_from_data(data)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_causal_lm(Path(tmp) / "policy", char_tokenizer(corpus), arch="llama",
                                    token_logits={"\n": 2.0})
        policy = load_policy(str(model_dir), backend="hf")
        prm = load_tiny_prm("token_classifier")
        questions = [line for line in corpus[0::2][: args.problems]]
        problems = [Problem(q, policy.format_prompt(q)) for q in questions]
        print(f"{args.problems} MATH-500 problems, N={args.n}, M={args.beam_size}, torch threads {torch.get_num_threads()}")
        print(f"{'strategy':<12} {'wall s':>8} {'gen tok':>8} {'tok/s':>8} {'plain s':>8} {'ratio':>6}")
        for strategy in ("best_of_n", "majority", "beam_search", "dvts"):
            uses_prm = strategy != "majority"
            start = time.perf_counter()
            results = search(problems, policy, prm if uses_prm else None, strategy=strategy, n=args.n,
                             beam_size=args.beam_size, seed=0, max_tokens=256, max_step_tokens=64)
            wall = time.perf_counter() - start
            generated = sum(r.usage.policy_output_tokens for r in results)
            plain = plain_generate_seconds(policy, [p.prompt for p in problems], args.n, generated)
            print(f"{strategy:<12} {wall:8.2f} {generated:8d} {generated / wall:8.0f} {plain:8.2f} {wall / plain:6.2f}")


if __name__ == "__main__":
    main()
