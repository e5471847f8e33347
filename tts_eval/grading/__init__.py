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
from collections import OrderedDict

from tts_eval.grading.checkers import CheckerStartError, Outcome, shared_pool, shutdown
from tts_eval.grading.extraction import extract_answer
from tts_eval.grading.normalization import answer_key, clean_answer, key_of_clean

__all__ = ["CheckerStartError", "answer_key", "extract_answer", "is_equivalent", "shutdown"]

logger = logging.getLogger(__name__)

_CACHE_SIZE = 1 << 16
_CACHEABLE_LENGTH = 4096  # longer answers are not remembered (they would hog memory)
# (clean gold, clean pred) -> True/False, or the timeout (float) a comparison ran out of.
_results: OrderedDict[tuple[str, str], bool | float] = OrderedDict()
_results_lock = threading.Lock()


def is_equivalent(gold: str, pred: str, timeout: float = 5.0) -> bool:
    """Whether the answer ``pred`` is mathematically equivalent to the reference ``gold``.

    Both are answers (e.g. what :func:`extract_answer` returns), not whole solutions. Handles
    numbers in any spelling (``0.5``/``\\frac12``/``50\\%``, ``1,000``, ``025``), radicals,
    pi, degrees, units, dollars, complex numbers, ordered tuples and intervals, unordered
    solution lists and sets, matrices, ``x = 3`` against ``3``, equations, text answers and
    multiple-choice letters.

    Never raises on bad input: ``None``, non-strings (other than numbers), empty, malformed
    or hostile answers give False. The symbolic comparison stops after ``timeout`` seconds
    and then counts as "not equivalent" (and is logged as a warning). The first call in a
    process also waits (about a second) for the checker process to start, and with more
    threads comparing at once than checker processes (``max(4, cpu_count)``) a call first
    waits for a free one; neither wait is part of ``timeout``. Raises
    :class:`CheckerStartError` only when that process cannot start at all (math-verify or
    sympy missing), since every grade would silently be False otherwise.
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(
            f"is_equivalent() needs a positive number of seconds, got timeout={timeout!r}"
        )
    gold_text, pred_text = _as_text(gold), _as_text(pred)
    if gold_text is None or pred_text is None:
        return False
    try:
        gold_clean, pred_clean = clean_answer(gold_text), clean_answer(pred_text)
        gold_key, pred_key = key_of_clean(gold_clean), key_of_clean(pred_clean)
        if not gold_key or not pred_key:
            return False  # nothing left of an answer ("", "$ $", "x =")
        if gold_clean == pred_clean or gold_key == pred_key:
            return True
    except Exception:  # noqa: BLE001 - the normal forms are best effort; never fail a grade
        logger.debug("could not normalise %.80r / %.80r", gold_text, pred_text, exc_info=True)
        return False

    pair = (gold_clean, pred_clean)
    with _results_lock:
        known = _results.get(pair)
        if known is not None:
            _results.move_to_end(pair)
    if isinstance(known, bool):
        return known
    if known is not None and known >= timeout:
        return False  # it already ran out of at least this much time

    outcome = shared_pool().compare(gold_clean, pred_clean, timeout)
    if outcome is Outcome.NO_CHECKER:
        logger.warning("grading %.80r against %.80r: shut down meanwhile", pred_text, gold_text)
        return False  # nothing to remember
    if outcome is Outcome.TIMED_OUT:
        logger.warning(
            "grading %.80r against %.80r ran past %.3g s; counted as not equivalent",
            pred_text,
            gold_text,
            timeout,
        )
    result = outcome is Outcome.EQUAL
    if len(gold_clean) + len(pred_clean) <= _CACHEABLE_LENGTH:
        with _results_lock:
            _results[pair] = result if outcome is not Outcome.TIMED_OUT else float(timeout)
            if len(_results) > _CACHE_SIZE:
                _results.popitem(last=False)
    return result


def _as_text(answer: object) -> str | None:
    """An answer as text: numbers are accepted (datasets store some answers as ints)."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return str(answer)
    return None
