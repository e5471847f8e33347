"""Pieces every family's input builder shares: the built input, special-token resolution,
finding marked characters among the tokens, and fitting an input into ``max_length``.

Nothing here runs a model, so the same builders serve every runtime (transformers, vLLM, HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from prm_backends.spec import PRMSpec

# The piece a SentencePiece tokenizer prepends to text that starts a word; not part of a token.
_SENTENCEPIECE_SPACE = "\u2581"
# Private-use characters stand in for marked tokens while a chat template is rendered.
_SENTINELS = [chr(c) for c in range(0xE000, 0xE010)]


@dataclass(frozen=True)
class PRMInput:
    """The token ids fed to the PRM and, per step, the position whose output scores it.

    A generative judge reads one prompt per step instead (``prompts``; its score is the
    next-token distribution at the prompt's end); ``input_ids`` is then the last prompt and
    ``score_positions`` the prompts' last positions.
    """

    input_ids: list[int]
    score_positions: list[int]
    prompts: list[list[int]] | None = None

    def __len__(self) -> int:
        """Tokens the PRM reads for this input."""
        return len(self.input_ids) if self.prompts is None else sum(map(len, self.prompts))

    @property
    def longest(self) -> int:
        """The longest sequence the model runs for this input."""
        return len(self.input_ids) if self.prompts is None else max(map(len, self.prompts))

    @classmethod
    def per_step(cls, prompts: list[list[int]]) -> PRMInput:
        return cls(prompts[-1], [len(p) - 1 for p in prompts], prompts)

    @property
    def judge_prompts(self) -> list[list[int]]:
        """``prompts``, for a caller that knows this is a generative judge's input."""
        assert self.prompts is not None, "not a generative judge's input"
        return self.prompts


@runtime_checkable
class InputFormat(Protocol):
    """A family's input builder and score read-out (the runtime runs the forward pass).

    ``prefix_stable``: the ids of a solution's input always begin with those of its leading
    steps' input (up to their last score position). Where a family cannot promise it, a
    continuation's ids are compared with its prefix's before known scores are reused.

    What a runtime needs beyond these depends on the family's head kind and traits
    (:data:`prm_backends.families.HEAD_FORMATS`): :class:`NextTokenFormat`,
    :class:`ClassesFormat`, :class:`ThinkingFormat`.
    """

    prefix_stable: bool

    def build(self, question: str, steps: list[str]) -> PRMInput: ...

    def read_out(self, head_outputs: torch.Tensor) -> torch.Tensor:
        """Step probabilities (one per row) from the head's outputs at the score positions."""
        ...


@runtime_checkable
class NextTokenFormat(InputFormat, Protocol):
    """A ``next_token`` head's format: the good and bad tokens whose next-token logits its
    read-out compares (vLLM and HTTP ask for exactly their log-probabilities)."""

    good_id: int
    bad_id: int


@runtime_checkable
class ClassesFormat(InputFormat, Protocol):
    """A ``classes`` head's format: the step tag, whose positions a server's per-token pooling
    returns rows for."""

    tag_id: int


@runtime_checkable
class ThinkingFormat(InputFormat, Protocol):
    """The format of a family that ``writes_tokens``: up to ``think_tokens`` tokens written
    greedily (0: none) go into each verdict prompt by :meth:`with_thoughts`."""

    think_tokens: int

    def with_thoughts(self, inp: PRMInput, thoughts: list[list[int]]) -> PRMInput: ...


def resolve_token(tokenizer, text: str, spec: PRMSpec, field: str) -> int:
    """The id of the single token the tokenizer makes of ``text``, or an error naming ``field``."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces = tokenizer.convert_ids_to_tokens(ids)
    # A SentencePiece tokenizer may put a lone word-start piece before the token proper.
    while len(ids) > 1 and pieces[0] == _SENTENCEPIECE_SPACE and not text[:1].isspace():
        ids, pieces = ids[1:], pieces[1:]
    unk = tokenizer.unk_token_id
    if unk is not None and unk in ids and text != tokenizer.unk_token:
        raise spec.error(
            field,
            f"the tokenizer of '{spec.model}' has no token {text!r} (it becomes the unknown token); "
            "use a token the tokenizer has, or add it to the tokenizer as a special token",
        )
    if len(ids) != 1:
        raise spec.error(
            field,
            f"the tokenizer of '{spec.model}' splits {text!r} into {len(ids)} pieces {pieces}; "
            "the family needs a single token: use a token the tokenizer has, or add it to the "
            "tokenizer as a special token",
        )
    return ids[0]


def pick_sentinel(texts: list[str]) -> str:
    """A character that occurs in none of ``texts``."""
    for sentinel in _SENTINELS:
        if not any(sentinel in text for text in texts):
            return sentinel
    raise ValueError("the question and steps use every private-use sentinel character U+E000-U+E00F")


def substitute_sentinel(text: str, sentinel: str, replacement: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with each ``sentinel`` replaced, and the character span of each replacement."""
    parts = text.split(sentinel)
    spans, out, pos = [], [], 0
    for i, part in enumerate(parts):
        out.append(part)
        pos += len(part)
        if i < len(parts) - 1:
            out.append(replacement)
            spans.append((pos, pos + len(replacement)))
            pos += len(replacement)
    return "".join(out), spans


def tokenize_marked(
    tokenizer,
    text: str,
    marks: list[tuple[int, int]],
    *,
    add_special_tokens: bool,
    expected_id: int,
    spec: PRMSpec,
    field: str,
) -> tuple[list[int], list[int]]:
    """Tokenize ``text`` once and find, for each marked character span, the last token that
    covers it; that token must be ``expected_id`` (else the tokenizer merged the marked token
    with its neighbours, and its position would be read wrongly)."""
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    found: list[int] = []
    token = 0
    for start, end in marks:
        last = None
        while token < len(ids) and offsets[token][0] < end:
            if offsets[token][1] > start:
                last = token
            token += 1
        if last is None or ids[last] != expected_id:
            piece = tokenizer.convert_ids_to_tokens(ids[last]) if last is not None else None
            raise spec.error(
                field,
                f"in context the tokenizer of '{spec.model}' does not keep {text[start:end]!r} as its "
                f"own token (found {piece!r} at characters {start}-{end}); use a token that stays "
                "separate from its neighbours",
            )
        found.append(last)
        token = last + 1
    return ids, found


class TruncationWarning(UserWarning):
    """Some solutions were longer than the PRM's ``max_length``; their trailing steps score NaN."""


@dataclass(frozen=True)
class FittedInput:
    """A built input cut to ``max_length`` by dropping trailing steps (``None``: nothing fits)."""

    input: PRMInput | None
    kept_steps: int
    total_steps: int

    @property
    def num_tokens(self) -> int:
        return 0 if self.input is None else len(self.input)

    @property
    def built(self) -> PRMInput:
        """``input``, for a caller that knows some steps fit."""
        assert self.input is not None, "no step of this solution fits into max_length"
        return self.input


def fit_input(fmt: InputFormat, question: str, steps: list[str], max_length: int) -> FittedInput:
    """Build the input of ``(question, steps)``; if it is longer than ``max_length``, drop
    trailing steps until it fits. The question is never cut: if the question and the first
    step do not fit, nothing is scored. A format's ``reserved_tokens`` (a judge's thinking
    and verdict prompt, added later) count towards the length."""
    if not steps:
        return FittedInput(None, 0, 0)
    reserve = getattr(fmt, "reserved_tokens", 0)
    max_length -= reserve
    built = fmt.build(question, steps)
    if built.longest <= max_length:
        return FittedInput(built, len(steps), len(steps))
    # Steps whose score position lies inside the limit may fit; rebuild to be sure.
    kept = sum(1 for pos in built.score_positions if pos < max_length)
    kept = min(kept, len(steps) - 1)
    while kept > 0:
        built = fmt.build(question, steps[:kept])
        if built.longest <= max_length:
            return FittedInput(built, kept, len(steps))
        kept -= 1
    return FittedInput(None, 0, len(steps))
