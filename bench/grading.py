"""Answer grading speed on MATH-500: milliseconds per pair (mean, p50, p95, worst) with the
checker processes already started, and the cost of running math-verify out of process
against calling it in this process.

    python bench/grading.py

Pairs: each gold ``answer`` against the last ``\\boxed{}`` of its own ``solution``
($TTS_EVAL_DATA_DIR, else ../shared/data), and each gold against the next row's gold (a
not-equivalent workload). Runs by hand; nothing here is a test.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tts_eval.grading import (  # noqa: E402
    extract_answer,
    is_equivalent,
    sympy_check,
)
from tts_eval.grading.cache import CACHE_BYTES  # noqa: E402
from tts_eval.grading.checkers import shared_pool  # noqa: E402
from tts_eval.grading.normalization import clean_answer, key_of_clean  # noqa: E402
from tts_eval.grading.sympy_check import answers_match  # noqa: E402


def load_rows() -> list[dict]:
    data = Path(os.environ.get("TTS_EVAL_DATA_DIR", REPO.parent / "shared" / "data"))
    with open(data / "math500" / "test.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def timed(pairs: list[tuple[str, str]], compare: Callable[[str, str], object]) -> tuple[list[float], tuple]:
    """Milliseconds per pair, and (ms, gold, pred) of the slowest."""
    times = []
    worst = (0.0, "", "")
    for gold, pred in pairs:
        start = time.perf_counter()
        compare(gold, pred)
        ms = (time.perf_counter() - start) * 1000
        times.append(ms)
        worst = max(worst, (ms, gold, pred))
    return times, worst


def report(name: str, times: list[float], worst: tuple) -> float:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    mean = statistics.fmean(times)
    print(
        f"{name:<46} mean {mean:8.2f}  p50 {statistics.median(times):8.2f}  p95 {p95:8.2f}  "
        f"worst {worst[0]:8.1f} ms  ({worst[1][:40]!r} vs {worst[2][:40]!r})"
    )
    return mean


def main() -> None:
    logging.disable(logging.WARNING)
    rows = load_rows()
    own_box = [(row["answer"], extract_answer(row["solution"])) for row in rows]
    golds = [row["answer"] for row in rows]
    neighbours = list(zip(golds, golds[1:] + golds[:1]))

    pool = shared_pool()
    start = time.perf_counter()
    pool.warm_up()
    print(f"checker start-up (cold): {time.perf_counter() - start:.2f} s")
    print(f"{len(own_box)} gold/own-box and {len(neighbours)} gold/next-gold pairs; ms per pair\n")

    def checker(gold: str, pred: str) -> object:
        return pool.compare(clean_answer(gold), clean_answer(pred), 5.0)

    def in_process(gold: str, pred: str) -> object:
        return answers_match(clean_answer(gold), clean_answer(pred))

    report("is_equivalent, gold vs own box", *timed(own_box, is_equivalent))
    report("is_equivalent, gold vs own box (cached)", *timed(own_box, is_equivalent))
    out_first = report("checker only, gold vs own box (first parse)", *timed(own_box, checker))
    report("checker only, gold vs own box (parses cached)", *timed(own_box, checker))
    report("is_equivalent, gold vs next gold", *timed(neighbours, is_equivalent))
    out_cross = report("checker only, gold vs next gold (warm)", *timed(neighbours, checker))

    # The same math-verify work in this process (no isolation, no time limit): its first
    # pass pays for loading math-verify and warming sympy, so it is run twice.
    logging.disable(logging.CRITICAL)
    timed(own_box[:20], in_process)
    sympy_check._parsed_short.cache_clear()
    in_first = report("in-process math-verify, gold vs own box", *timed(own_box, in_process))
    in_cross = report("in-process math-verify, gold vs next gold", *timed(neighbours, in_process))
    print(
        f"\nout-of-process / in-process mean: {out_first / in_first:.2f}x (own box, first parse), "
        f"{out_cross / in_cross:.2f}x (next gold, parses cached)"
    )

    memory(pool)


def _status_kb(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory(pool) -> None:
    """The memory bounds: each checker's peak against its cap, and the parent's parse caches
    after 200 distinct 1 MB answers (Linux only: reads /proc)."""
    if not Path("/proc/self/status").exists():
        return
    checkers = list(pool._idle)
    peaks = [_status_kb(c.process.pid, "VmHWM") / 1024 for c in checkers if c.process.poll() is None]
    cap = pool.memory_limit / 1024**2
    print(
        f"\ncheckers: peak resident memory {max(peaks):.0f} MB (of {len(peaks)} alive), cap {cap:.0f} MB each "
        f"(address space), at most {pool._max} checkers: {pool._max * cap / 1024:.1f} GB in all"
    )
    before = _status_kb("self", "VmRSS")
    for k in range(200):
        answer = f"{k}" + "7" * 1_000_000
        key_of_clean(clean_answer(answer))
    grown = (_status_kb("self", "VmRSS") - before) / 1024
    held = (clean_answer.cache.bytes + key_of_clean.cache.bytes) / 1024**2
    print(
        f"parse caches after 200 distinct 1 MB answers: {held:.0f} MB held "
        f"(budget {2 * CACHE_BYTES / 1024**2:.0f} MB), resident memory grew {grown:.0f} MB"
    )


if __name__ == "__main__":
    main()
