"""Symbolic answer comparison with math-verify, run inside a checker process.

This file is executed as a script by :mod:`tts_eval.grading.checkers`; it imports nothing
from ``tts_eval`` (which would load torch), so a checker is ready in about a second.
Protocol (one JSON document per line, ASCII only): the process writes ``{"ready": true}``
(or ``{"error": ...}``) once math-verify is loaded, then answers every request
``[gold, pred, seconds]`` read from stdin with ``{"equal": bool}``. It exits when stdin
closes.

math-verify's own time limits use SIGALRM, which only works in a main thread; they are
switched off here (``parsing_timeout=None``, ``timeout_seconds=None``) and the parent kills
the process instead when a comparison runs too long.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from functools import lru_cache

# CPU seconds allowed beyond a request's own limit before the kernel stops an orphaned
# checker (one whose parent died without killing it).
_CPU_GRACE_SECONDS = 10
# Comparisons run once at start-up, so the first real ones do not pay for loading
# math-verify, building its parser and sympy's lazy imports (number, tuple, interval,
# expression code paths).
_WARM_UP = (
    ("\\frac{1}{2}", "0.5"),
    ("(3, \\frac{\\pi}{2})", "x - y"),
    ("(1, 2]", "[1, \\infty)"),
)


def answers_match(gold: str, pred: str) -> bool:
    """Whether math-verify finds ``pred`` equivalent to ``gold`` (both cleaned answers)."""
    from math_verify import verify

    gold_parsed, pred_parsed = _parsed(gold), _parsed(pred)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=None))


# Parses of short answers are remembered (gold answers recur); long ones would fill the
# checker's memory cap, so they are parsed afresh: at most 2,048 entries of <= 2,048 chars.
_CACHED_LENGTH = 2048


def _parsed(answer: str) -> tuple:
    return _parsed_short(answer) if len(answer) <= _CACHED_LENGTH else _parse(answer)


@lru_cache(maxsize=2048)
def _parsed_short(answer: str) -> tuple:
    return _parse(answer)


def _parse(answer: str) -> tuple:
    """math-verify's parse of one answer: the sympy object(s) then the matched string."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    # A box makes math-verify read the whole answer as one LaTeX expression; an answer with
    # unbalanced braces would escape the box, so it goes between dollars instead.
    wrapped = f"\\boxed{{{answer}}}" if balanced_braces(answer) else f"${answer}$"
    found = parse(
        wrapped,
        [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
        parsing_timeout=None,
    )
    return tuple(_with_imaginary_unit(item) for item in found)


def _with_imaginary_unit(item):
    """math-verify reads ``i`` as a plain symbol (real or not depending on how the answer is
    spaced); make it sympy's imaginary unit so ``1+274i``, ``1 + 274 i`` and ``(1+i)^2 - 2i``
    compare by value."""
    import sympy

    if not isinstance(item, (sympy.Basic, sympy.MatrixBase)):
        return item
    try:
        units = {s: sympy.I for s in item.free_symbols if getattr(s, "name", None) == "i"}
        return item.xreplace(units) if units else item
    except Exception:  # noqa: BLE001 - keep math-verify's reading
        return item


def balanced_braces(text: str) -> bool:
    """Whether every ``{`` of ``text`` is closed (``\\{``/``\\}`` are escaped, not grouping)."""
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _limit_resources(memory_bytes: int) -> None:
    """Cap memory so a runaway expression cannot take the machine down before the parent
    kills it (POSIX only; elsewhere the parent's kill is the only limit)."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = memory_bytes
        if hard != resource.RLIM_INFINITY:
            soft = min(hard, soft)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ImportError, ValueError, OSError, AttributeError):
        pass


def _limit_cpu(seconds: float) -> None:
    """Let the kernel end this process if the next request outlives its limit by far (a
    safety net for orphaned checkers; the parent normally kills first)."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = int(usage.ru_utime + usage.ru_stime + seconds + _CPU_GRACE_SECONDS) + 1
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ImportError, ValueError, OSError, AttributeError):
        pass


def serve(memory_bytes: int) -> int:
    # Replies get their own copy of stdout; anything a library prints goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="ascii", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(message: dict) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    logging.disable(logging.CRITICAL)  # math-verify logs every failed parse
    # Integers past Python's 4,300-digit guard are answers too (10^5000 written out); the
    # memory and CPU limits below bound what converting them costs.
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    try:
        for gold, pred in _WARM_UP:
            answers_match(gold, pred)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        reply({"error": f"math-verify is not usable: {exc!r}"})
        return 1
    _limit_resources(memory_bytes)
    reply({"ready": True})
    for line in sys.stdin:
        try:
            gold, pred, seconds = json.loads(line)
            _limit_cpu(float(seconds))
            equal = answers_match(str(gold), str(pred))
        except Exception:  # noqa: BLE001 - any failure means "not shown equivalent"
            equal = False
        reply({"equal": equal})
    return 0


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 4 * 1024**3))
