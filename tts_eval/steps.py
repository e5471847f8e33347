"""The one place that knows how a solution is cut into steps.

A step is the text up to and including its ``"\\n\\n"`` separator, so the steps of a solution
concatenate back to the solution exactly. PRMs see a step's content through
:func:`step_content` (separators and surrounding white space removed).
"""

from __future__ import annotations

import re

STEP_SEPARATOR = "\n\n"

# A separator plus any further newlines/spaces that follow it belong to the step before.
_STEP_END = re.compile(r"\n\n\s*")


def split_steps(text: str) -> list[str]:
    """Split a solution into steps whose concatenation is ``text``.

    Every step but the last ends with the separator (and any white space after it); the last
    step may lack one. White space before the first step is kept with the first step, so no
    step is blank unless the whole text is.
    """
    if not text:
        return []
    steps: list[str] = []
    start = 0
    for match in _STEP_END.finditer(text):
        if not text[start : match.start()].strip():
            continue  # a leading blank run belongs to the first real step
        steps.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        if steps and not text[start:].strip():
            steps[-1] += text[start:]
        else:
            steps.append(text[start:])
    return steps


def join_steps(steps: list[str]) -> str:
    """The solution text of ``steps`` (the inverse of :func:`split_steps`)."""
    return "".join(steps)


def step_content(step: str) -> str:
    """What a PRM reads of a step: its text without separators or outer white space."""
    return step.strip()


def ends_step(text: str) -> bool:
    """Whether ``text`` ends at a step separator."""
    return text.endswith(STEP_SEPARATOR)
