"""Grading: the final answer of a solution and whether two answers are equivalent.

- :func:`extract_answer` reads the last ``\\boxed{...}`` of a solution.
- :func:`answer_key` is a cheap canonical string; equal keys mean equivalent answers.
- :func:`is_equivalent` decides equivalence with math-verify and sympy in a checker
  process that is killed when it runs past ``timeout`` (see :mod:`.checkers`), so it is
  safe from any thread and never hangs on hostile input.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

from tts_eval.grading.cache import ByteLRU
from tts_eval.grading.checkers import CheckerStartError, Outcome, shared_pool, shutdown
from tts_eval.grading.extraction import extract_answer
from tts_eval.grading.normalization import answer_key, clean_answer, key_of_clean

__all__ = [
    "CheckerStartError",
    "Grade",
    "answer_key",
    "extract_answer",
    "grade",
    "grading_failures",
    "is_equivalent",
    "shutdown",
]

logger = logging.getLogger(__name__)

_CACHEABLE_LENGTH = 4096  # longer answers are not remembered (they would hog memory)
# (clean gold, clean pred) -> True/False, or the timeout (float) a comparison ran out of.
_results = ByteLRU()
_failures = 0  # grading failures in this process (see grading_failures)
_failures_lock = threading.Lock()


@dataclass(frozen=True)
class Grade:
    """A verdict: ``equal``, and ``failure`` (why no verdict was reached; then ``equal`` is
    False) or None."""

    equal: bool
    failure: str | None = None


def is_equivalent(gold: str, pred: str, timeout: float = 5.0) -> bool:
    """Whether the answer ``pred`` is mathematically equivalent to the reference ``gold``
    (``grade(gold, pred, timeout).equal``; see :func:`grade`)."""
    return grade(gold, pred, timeout).equal


def grading_failures() -> int:
    """How many comparisons of this process reached no verdict (see :func:`grade`)."""
    return _failures


def grade(gold: str, pred: str, timeout: float = 5.0) -> Grade:
    """Whether the answer ``pred`` is mathematically equivalent to the reference ``gold``.

    Both are answers (e.g. what :func:`extract_answer` returns), not whole solutions. Handles
    numbers in any spelling (``0.5``/``\\frac12``/``50\\%``, ``1,000``, ``025``, repeating
    decimals ``0.\\overline{3}``, integers of any length), radicals (``3\\sqrt13``), pi,
    degrees, units, dollars, complex numbers, ordered tuples and intervals (and inequalities
    in one variable as the interval they describe), unordered solution lists and sets,
    matrices, ``x = 3`` against ``3``, equations, text answers and multiple-choice letters.
    docs/grading.md states the policy for the debatable cases.

    Never raises on bad input: ``None``, non-strings (other than numbers), empty, malformed
    or hostile answers are not equivalent. When no verdict can be reached (the symbolic
    comparison ran past ``timeout`` seconds, or the checker processes died, e.g. killed by
    the OOM killer) the grade is "not equivalent" with a ``failure`` reason, a warning is
    logged and :func:`grading_failures` counts it, so one answer never fails an evaluation.
    The first call in a process also waits (about a second) for the checker process to
    start, and with more threads comparing at once than checker processes a call first waits
    for a free one; neither wait is part of ``timeout``. Raises :class:`CheckerStartError`
    only when a checker reports that math-verify or sympy is unusable (every grade would be
    wrong otherwise).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"is_equivalent() needs a positive number of seconds, got timeout={timeout!r}")
    gold_text, pred_text = _as_text(gold), _as_text(pred)
    if gold_text is None or pred_text is None:
        return Grade(False)
    try:
        gold_clean, pred_clean = clean_answer(gold_text), clean_answer(pred_text)
        gold_key, pred_key = key_of_clean(gold_clean), key_of_clean(pred_clean)
        if not gold_key or not pred_key:
            return Grade(False)  # nothing left of an answer ("", "$ $", "x =")
        if gold_clean == pred_clean or gold_key == pred_key:
            return Grade(True)
    except Exception:  # the normal forms are best effort; never fail a grade
        logger.debug("could not normalise %.80r / %.80r", gold_text, pred_text, exc_info=True)
        return Grade(False)

    pair = (gold_clean, pred_clean)
    known = _results.get(pair)
    if isinstance(known, bool):
        return Grade(known)
    if known is not None and known >= timeout:
        return _failed(gold_text, pred_text, f"ran past {known:.3g} s")  # it already did

    outcome = shared_pool().compare(gold_clean, pred_clean, timeout)
    if outcome is Outcome.NO_CHECKER:
        return _failed(gold_text, pred_text, "grading was shut down meanwhile")
    if outcome is Outcome.CHECKER_DIED:
        return _failed(gold_text, pred_text, "every checker process died (killed from outside or crashed)")
    cacheable = len(gold_clean) + len(pred_clean) <= _CACHEABLE_LENGTH
    if outcome is Outcome.TIMED_OUT:
        if cacheable:
            _results.put(pair, float(timeout))
        return _failed(gold_text, pred_text, f"ran past {timeout:.3g} s")
    result = outcome is Outcome.EQUAL
    if cacheable:
        _results.put(pair, result)
    return Grade(result)


def _failed(gold: str, pred: str, reason: str) -> Grade:
    global _failures
    with _failures_lock:
        _failures += 1
    logger.warning("grading %.80r against %.80r: %s; counted as not equivalent", pred, gold, reason)
    return Grade(False, reason)


def _as_text(answer: object) -> str | None:
    """An answer as text: numbers are accepted (datasets store some answers as ints)."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, int) and not isinstance(answer, bool):
        return _int_text(answer)
    if isinstance(answer, float):
        return str(answer)
    return None


def _int_text(number: int) -> str:
    """Decimal digits of any integer; ``str()`` refuses past 4,300 digits (a guard against
    slow conversions of untrusted text, not a limit on answers)."""
    try:
        return str(number)
    except ValueError:
        pass
    sign, number = ("-", -number) if number < 0 else ("", number)
    chunk = 10**1000
    pieces = []
    while number:
        number, low = divmod(number, chunk)
        pieces.append(f"{low:01000d}")
    return sign + "".join(reversed(pieces)).lstrip("0")
