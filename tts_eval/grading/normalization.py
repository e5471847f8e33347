"""Cheap string normal forms of answers.

Two levels:

- :func:`clean_answer` removes presentation only (delimiters, spacing, ``\\left``, units in
  ``\\text{}``, degree signs, dollar signs, thousands separators, leading zeros, a final
  period, ...). The result is still LaTeX with the same meaning; it is what the symbolic
  checker parses.
- :func:`answer_key` goes further and also drops what MATH-style grading treats as
  equivalent: ``\\%``, a ``x =`` / ``x \\in`` prefix, ``\\text{}`` around words and all
  insignificant white space. Equal keys mean equivalent answers; the voting code groups by
  key before it asks the symbolic checker.

All rules are linear-time regular expressions, so arbitrarily long or malformed input is
safe to normalise in-process.
"""

from __future__ import annotations

import re
from fractions import Fraction

from tts_eval.grading.cache import byte_cached
from tts_eval.grading.sympy_check import balanced_braces

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u00d7": "\\times ",
    "\u00b7": "\\cdot ",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u00b0": "^\\circ",
    "\u00a0": " ",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))

# Math-mode delimiters around the whole answer.
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_WHOLE_BOX = re.compile(r"^\\(?:boxed|fbox|framebox)\s*(?:\[[^\[\]{}]*\]\s*)*\{(.*)\}$", re.DOTALL)

# Thousands separators written as "10,\!080", "10{,}080" or "10\,080".
_THOUSANDS_MARKUP = re.compile(r"(\d)(?:,\s*\\!\s*|\{,\}|\\,)(?=\d{3}(?!\d))")
_THOUSANDS_PLAIN = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")

_SIZED_DELIMITER = re.compile(r"\\(?:left|right|[Bb]igg?[lr]?)(?![a-zA-Z])\s*\.?")
_SPACING = re.compile(r"(?<!\\)\\[!,:;>]|\\q?quad(?![a-zA-Z])|~|\\(?:displaystyle|textstyle)(?![a-zA-Z])")
_BACKSLASH_SPACE = re.compile(r"(?<!\\)\\ ")  # not the end of a "\\" line break
_FRAC_ALIASES = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_BINOM_ALIASES = re.compile(r"\\[dt]binom(?![a-zA-Z])")

# "^\circ", "^{\circ}", "{}^\circ", "\degree", "\text{ degrees}" after a number.
_DEGREES = re.compile(
    r"(?:\{\})?\^\s*(?:\{\s*)?\\circ(?:\s*\})?|\\degree(?![a-zA-Z])"
    r"|\\(?:text|mbox|mathrm)\s*\{\s*degrees?\s*\}"
)
_DOLLARS = re.compile(r"\\\$|\$")
# The imaginary unit in roman type; math-verify would drop "\mathrm{i}" like a unit.
_IMAGINARY_UNIT = re.compile(r"\\(?:text|mathrm|mathit|rm|textrm)\s*\{\s*i\s*\}|\\imath(?![a-zA-Z])")

# Text-style commands that only change the font.
_FONT = re.compile(r"\\(?:textbf|textit|textrm|textnormal|mathbf|mathit|mathrm|mbox|bf|rm|boldsymbol)\s*\{")
# A trailing unit: "\text{ cm}^2" after something numeric. Single letters i, e, j are
# constants, not units.
_TRAILING_UNIT = re.compile(
    r"\\text\s*\{\s*(?!(?:i|e|j)\s*\})[a-zA-Z][a-zA-Z .]*\}(?:\s*\^\s*(?:\{\s*)?\d(?:\s*\})?)?\s*$"
)
_TEXT_NUMBER = re.compile(r"\\text\s*\{\s*(?:\(\s*)?([-+]?[\d.,]+)(?:\s*\))?\s*\}")
_TEXT_CHOICE = re.compile(r"^\\text\s*\{\s*(?:\(\s*)?([A-Z])(?:\s*\))?\s*\}$")
_CHOICE = re.compile(r"^\(\s*([A-Z])\s*\)$")
_PARENTHESISED_NUMBER = re.compile(r"^\(\s*([-+]?\d+(?:\.\d*)?)\s*\)$")

# Short forms "\frac43", "\frac 59", "\frac9{19}", "\frac{270}7", "\sqrt2".
_FRAC_DIGITS = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_DIGIT_BRACE = re.compile(r"\\frac\s*(\d)\s*\{")
_FRAC_BRACE_DIGIT = re.compile(r"\\frac\s*\{([^{}]*)\}\s*(\d)")
# A radical without braces takes the whole run of digits: answers write "3\sqrt13" for
# 3 times the root of 13 (TeX would typeset the root of 1, then 3; no answer means that).
_SQRT_DIGITS = re.compile(r"\\sqrt\s*(\[[^\[\]{}]*\])?\s*(\d+)")
_SQRT_LETTER = re.compile(r"\\sqrt\s*(\[[^\[\]{}]*\])?\s+([a-zA-Z])(?![a-zA-Z])")

# A repeating decimal "0.\overline{3}", "1.2\overline{45}", "0.\bar6" (at most
# _REPEATING_DIGITS digits, so the fraction stays small).
_REPEATING = re.compile(r"(?<!\d)(\d*)\.(\d*)\\(?:overline|bar)\s*(?:\{\s*(\d+)\s*\}|(\d))")
_REPEATING_DIGITS = 60

# Inequalities in one variable: "x \le 3", "-1 < x < 1", "x < -1 \text{ or } x > 2".
_RELATION = re.compile(r"\s*(<=|>=|<|>|\\l(?:eq?|eqslant|t)(?![a-zA-Z])|\\g(?:eq?|eqslant|t)(?![a-zA-Z]))\s*")
_ALTERNATIVES = re.compile(
    r"\s*(?:\\text\s*\{\s*or\s*\}|(?<![a-zA-Z\\])or(?![a-zA-Z])|\\cup(?![a-zA-Z])|\\vee(?![a-zA-Z]))\s*"
)
_VARIABLE = re.compile(r"^[a-zA-Z]$")

# A number in a base: "52_8", "4210_{5}" -> its digits.
_BASE_SUBSCRIPT = re.compile(r"^(\d[0-9A-F]*)_(?:\d+|\{\s*\d+\s*\})$")
_DECIMAL = re.compile(r"^([-+]?)(\d*)\.(\d*)$")
_INTEGER = re.compile(r"^([-+]?)(\d+)$")

_PERCENT = re.compile(r"\\?%")
_TEXT_WORDS = re.compile(r"\\text\s*\{([^{}]*)\}")
# "x = 5", "k=2" (a single letter and one "="), "x \in [-2, 7]".
_VARIABLE_PREFIX = re.compile(r"^[a-zA-Z]\s*(?:=(?!.*=)|\\in(?![a-zA-Z]))\s*", re.DOTALL)
# White space only matters between a command and a letter ("\cot x").
_INSIGNIFICANT_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])|\s+")
_WHITE_SPACE = re.compile(r"\s+")


# Pure str -> str functions called for every candidate of every vote: cache them.
@byte_cached()
def clean_answer(answer: str) -> str:
    """``answer`` with its presentation removed but its meaning kept (see the module doc)."""
    text = _UNICODE_RE.sub(lambda m: _UNICODE[m.group()], answer).strip()
    text = _strip_wrappers(text)
    text = _THOUSANDS_MARKUP.sub(r"\1", text)
    text = _SIZED_DELIMITER.sub("", text)
    text = _SPACING.sub(" ", text)
    text = _BACKSLASH_SPACE.sub(" ", text)
    text = _FRAC_ALIASES.sub(r"\\frac", text)
    text = _BINOM_ALIASES.sub(r"\\binom", text)
    text = _DEGREES.sub("", text)
    text = _DOLLARS.sub("", text)
    text = _IMAGINARY_UNIT.sub("i", text)
    text = _FONT.sub(r"\\text{", text)
    text = text.strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    unitless = _TRAILING_UNIT.sub("", text).rstrip()
    if unitless and any(c.isdigit() for c in unitless):
        text = unitless
    text = _TEXT_NUMBER.sub(r"\1", text)
    text = _TEXT_CHOICE.sub(r"\1", text)
    text = _CHOICE.sub(r"\1", text)
    text = _PARENTHESISED_NUMBER.sub(r"\1", text)
    text = _FRAC_DIGITS.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_DIGIT_BRACE.sub(r"\\frac{\1}{", text)
    text = _FRAC_BRACE_DIGIT.sub(r"\\frac{\1}{\2}", text)
    text = _SQRT_DIGITS.sub(lambda m: f"\\sqrt{m.group(1) or ''}{{{m.group(2)}}}", text)
    text = _SQRT_LETTER.sub(lambda m: f"\\sqrt{m.group(1) or ''}{{{m.group(2)}}}", text)
    text = _REPEATING.sub(_repeating_as_fraction, text)
    text = _WHITE_SPACE.sub(" ", text).strip()
    text = _inequality_as_interval(text)
    return _clean_number(text)


def answer_key(answer: str) -> str:
    """A canonical string for ``answer``: answers with equal keys are equivalent.

    Use it to group answers cheaply before comparing the groups with ``is_equivalent``.
    """
    if not isinstance(answer, str):
        raise TypeError(f"answer_key() needs a str answer, got {type(answer).__name__}")
    return key_of_clean(clean_answer(answer))


@byte_cached()
def key_of_clean(cleaned: str) -> str:
    """:func:`answer_key` of an answer already passed through :func:`clean_answer`."""
    text = _PERCENT.sub("", cleaned)
    text = _TEXT_WORDS.sub(r"\1", text)
    text = _VARIABLE_PREFIX.sub("", text, count=1)
    text = _INSIGNIFICANT_SPACE.sub(lambda m: f"{m.group(1)} " if m.group(1) else "", text)
    return _clean_number(text)


def _repeating_as_fraction(match: re.Match) -> str:
    """``1.2\\overline{45}`` -> ``\\frac{679}{550}`` (the exact value of the decimal)."""
    whole, fixed = match.group(1), match.group(2)
    repeating = match.group(3) or match.group(4)
    if len(whole) + len(fixed) + len(repeating) > _REPEATING_DIGITS:
        return match.group()
    value = Fraction(int(whole or "0"))
    value += Fraction(int(fixed + repeating) - int(fixed or "0"), 10 ** len(fixed) * (10 ** len(repeating) - 1))
    if value.denominator == 1:
        return str(value.numerator)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _inequality_as_interval(text: str) -> str:
    """A set written as inequalities in one variable, as intervals: ``x \\le 3`` ->
    ``(-\\infty, 3]``, ``-1 < x < 1`` -> ``(-1, 1)``, ``x < 0 \\text{ or } x > 1`` ->
    ``(-\\infty, 0) \\cup (1, \\infty)``. Anything else is returned unchanged."""
    if "<" not in text and ">" not in text and "\\l" not in text and "\\g" not in text:
        return text
    intervals = []
    variables = set()
    for alternative in _ALTERNATIVES.split(text):
        parts = _RELATION.split(alternative.strip())
        converted = _chain_as_interval(parts)
        if converted is None:
            return text
        interval, variable = converted
        intervals.append(interval)
        variables.add(variable)
    if len(variables) != 1:
        return text
    return " \\cup ".join(intervals)


def _chain_as_interval(parts: list[str]) -> tuple[str, str] | None:
    """``[a, op, x]``, ``[x, op, b]`` or ``[a, op, x, op, b]`` (as ``_RELATION.split`` gives
    them) as an interval and its variable."""
    operands, relations = parts[0::2], [_direction(op) for op in parts[1::2]]
    if not 1 <= len(relations) <= 2 or any(not o or "=" in o for o in operands):
        return None
    positions = [i for i, o in enumerate(operands) if _VARIABLE.match(o)]
    candidates = [i for i in positions if len(operands) == 2 or i == 1]
    if len(candidates) != 1:
        return None
    at = candidates[0]
    if len(operands) == 3 and relations[0][0] != relations[1][0]:
        return None  # "1 < x > 2" is no interval
    # Read every relation as "left < right" with its strictness.
    lower, upper = ("-\\infty", False), ("\\infty", False)
    for i, (less, inclusive) in enumerate(relations):
        left, right = operands[i], operands[i + 1]
        if not less:
            left, right = right, left
        if right == operands[at]:
            lower = (left, inclusive)
        elif left == operands[at]:
            upper = (right, inclusive)
        else:
            return None
    opening = "[" if lower[1] else "("
    closing = "]" if upper[1] else ")"
    return f"{opening}{lower[0]}, {upper[0]}{closing}", operands[at]


def _direction(relation: str) -> tuple[bool, bool]:
    """(is "less than", includes equality) of a relation symbol."""
    less = relation.startswith("<") or relation.startswith("\\l")
    inclusive = "=" in relation or relation.startswith(("\\le", "\\ge"))
    return less, inclusive


def _strip_wrappers(text: str) -> str:
    """Remove ``$...$``, ``\\(...\\)``, ``\\[...\\]`` and a box around the whole answer."""
    for _ in range(3):
        inner = text
        for opening, closing in _DELIMITERS:
            long_enough = len(inner) >= len(opening) + len(closing)
            if long_enough and inner.startswith(opening) and inner.endswith(closing):
                inner = inner[len(opening) : len(inner) - len(closing)].strip()
                break
        box = _WHOLE_BOX.match(inner)
        if box and balanced_braces(box.group(1)):
            inner = box.group(1).strip()
        if inner == text:
            break
        text = inner
    return text


def _clean_number(text: str) -> str:
    """Plain numbers in one spelling: no thousands separators, leading zeros, trailing
    decimal zeros, plus sign or base subscript."""
    if _THOUSANDS_PLAIN.match(text):
        text = text.replace(",", "")
    base = _BASE_SUBSCRIPT.match(text)
    if base:
        text = base.group(1)
    decimal = _DECIMAL.match(text)
    if decimal and (decimal.group(2) or decimal.group(3)):
        sign, whole, fraction = decimal.groups()
        whole = whole.lstrip("0") or "0"
        fraction = fraction.rstrip("0")
        text = f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"
    integer = _INTEGER.match(text)
    if integer:
        sign, digits = integer.groups()
        digits = digits.lstrip("0") or "0"
        text = digits if digits == "0" or sign == "+" else f"{sign}{digits}"
    return text
