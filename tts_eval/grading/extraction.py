"""Finding the final answer a solution puts in ``\\boxed{...}`` (or ``\\fbox``/``\\framebox``)."""

from __future__ import annotations

import re

# The box command, not followed by a letter (so ``\boxedx`` is not a box), then optional
# ``[width]`` arguments of ``\framebox``.
_BOX = re.compile(r"\\(?:boxed|fbox|framebox)(?![a-zA-Z])\s*(?:\[[^\[\]{}]*\]\s*)*")
# ``\boxed 5``: the answer is the next run of characters up to white space or ``$``.
_BARE_ARGUMENT = re.compile(r"[^\s${}\\]+")


def extract_answer(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}``, ``\\fbox{...}`` or
    ``\\framebox{...}`` of ``text`` (nested braces allowed), stripped of outer white space.

    ``\\boxed 5`` (no braces) counts too. A box whose braces never close (a truncated
    solution) is skipped in favour of the last complete one before it. Returns None when
    there is no complete box or the last one is empty.
    """
    if not isinstance(text, str) or "\\" not in text:
        return None
    boxes = list(_BOX.finditer(text))
    if not boxes:
        return None
    closing = _matching_braces(text)
    for box in reversed(boxes):
        start = box.end()
        if start < len(text) and text[start] == "{":
            end = closing.get(start)
            if end is None:
                continue  # unclosed: look at the box before
            content = text[start + 1 : end].strip()
        else:
            bare = _BARE_ARGUMENT.match(text, start)
            if bare is None:
                continue
            content = bare.group().rstrip(".,;:")
        return content or None
    return None


def _matching_braces(text: str) -> dict[int, int]:
    """Position of each ``{`` that is closed -> position of its ``}``, in one pass.

    A backslash escapes the next character, so ``\\{`` and ``\\}`` (set braces) are not
    grouping braces; ``\\\\`` (a line break) escapes nothing after it.
    """
    closing: dict[int, int] = {}
    open_positions: list[int] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            open_positions.append(i)
        elif char == "}" and open_positions:
            closing[open_positions.pop()] = i
        i += 1
    return closing
