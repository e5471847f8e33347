"""Test doubles for unit tests of the search logic: a policy that plays a scripted tree of
continuations and a PRM that looks step scores up in a table. The real policy and PRMs are
tested against real models elsewhere; these make the strategies' choices exact."""

from __future__ import annotations

from collections import defaultdict

from prm_backends import Scored
from tts_eval.types import Completion


class ScriptedPolicy:
    """Continuations of each solution-so-far are handed out in script order across requests
    (the k-th request for a prefix with n samples gets entries k*n ... k*n+n-1, cycling).
    An entry is ``(text, finish_reason)``; ``num_tokens`` is the text's length."""

    name = "scripted-policy"
    num_parameters = 1000

    def __init__(self, prompt: str, script: dict[str, list[tuple[str, str]]]) -> None:
        self.prompt = prompt
        self.script = script
        self.handed_out: dict[str, int] = defaultdict(int)
        self.calls: list[dict] = []

    def format_prompt(self, question: str) -> str:
        return self.prompt

    def generate(self, prompts, *, n, temperature, top_p, max_tokens, stop, seed=None):
        self.calls.append({"prompts": list(prompts), "n": n, "max_tokens": max_tokens, "stop": list(stop)})
        outputs = []
        for prompt in prompts:
            assert prompt.startswith(self.prompt), prompt
            prefix = prompt[len(self.prompt) :]
            entries = self.script[prefix]
            start = self.handed_out[prefix]
            self.handed_out[prefix] += n
            picked = [entries[(start + j) % len(entries)] for j in range(n)]
            outputs.append([Completion(t, len(t), reason, len(prompt)) for t, reason in picked])
        return outputs


class ScriptedPRM:
    """Scores each step by looking its stripped text up in ``table``. Its tokens are characters:
    a continuation computes only its new steps' (the question's too when nothing is known)."""

    name = "scripted-prm"
    num_parameters = 10

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[list] = []

    def score_batch(self, items):
        self.calls.append(list(items))
        return [[self.table[step.strip()] for step in steps] for _, steps in items]

    def score(self, question, steps):
        return self.score_batch([(question, steps)])[0]

    def score_continuations(self, items):
        self.calls.append([(question, steps) for question, steps, _ in items])
        results = []
        for question, steps, known in items:
            new = steps[len(known) :]
            computed = sum(len(s) for s in new) + (0 if known else len(question))
            scores = list(known) + [self.table[step.strip()] for step in new]
            results.append(Scored(scores, computed, self.count_tokens([(question, steps)])[0]))
        return results

    def count_tokens(self, items):
        return [len(question) + sum(len(s) for s in steps) for question, steps in items]
