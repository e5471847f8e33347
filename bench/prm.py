"""PRM scoring throughput per family on its tiny checkpoint: tokens/s and steps/s at batch sizes
1, 8 and 32, and the speed-up of batching over batch size 1.

    python bench/prm.py [--solutions 64] [--steps K] [--threads 1] [--device cpu]

``--steps K`` scores only each solution's first K steps (the short prefixes a beam search
scores early on).

Solutions are MATH-500 reference solutions cut into sentence steps ($TTS_EVAL_DATA_DIR, else
../shared/data). Runs by hand; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--solutions", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None, help="score only the first STEPS steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

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
            print(f"{family:<18}{batch_size:>6}{tokens:>9}{padded / tokens - 1:>9.0%}{tokens / seconds:>11.0f}"
                  f"{steps / seconds:>10.0f}{base / seconds:>11.2f}x")


if __name__ == "__main__":
    main()
