"""Compute accounting: inference FLOPs, and what a run at a smaller budget would process.

FLOPs = 2 x parameters x tokens processed: a dense transformer's forward pass costs about
one multiply and one add per parameter per token, prompt and generated tokens alike
(attention's own share, small at these lengths, is left out). The search, the sweep, the
plan and the leaderboard all count FLOPs with :func:`flops` and scale a run to a smaller
budget with :func:`at_budget`, so the same run gives the same figure everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from tts_eval.types import Usage


def flops(parameters: float, tokens: float) -> float:
    """Inference FLOPs of a model of ``parameters`` parameters over ``tokens`` tokens."""
    return 2.0 * parameters * tokens


@dataclass(frozen=True)
class TokenCounts:
    """Tokens one problem's search processed: the policy's prompts (``policy_input``) and
    generated tokens, and the tokens the PRM computed."""

    policy_input: float
    policy_output: float
    prm: float

    @classmethod
    def of(cls, usage: Usage) -> TokenCounts:
        return cls(usage.policy_input_tokens, usage.policy_output_tokens, usage.prm_tokens)

    @property
    def policy(self) -> float:
        return self.policy_input + self.policy_output

    def policy_flops(self, policy_params: float) -> float:
        return flops(policy_params, self.policy)

    def prm_flops(self, prm_params: float) -> float:
        return flops(prm_params, self.prm)

    def flops(self, policy_params: float, prm_params: float) -> float:
        """Policy plus PRM FLOPs (``prm_params`` 0 where no PRM ran)."""
        return self.policy_flops(policy_params) + self.prm_flops(prm_params)


def at_budget(tokens: TokenCounts, k: int, of: int, *, one_request: bool) -> TokenCounts:
    """What a run drawing ``k`` of a run's ``of`` independent units (solutions, or DVTS
    subtrees) would process, in expectation.

    Generated tokens and PRM tokens belong to the units, so they scale by k/of. The prompt
    depends on how the run sent its units: Best-of-N and majority ask for all n solutions in
    one request (``one_request``), whose prompt is prefilled once whatever n (vLLM's ``n``,
    the hf backend's shared prompt, and every backend records it once), so a run at k sends
    that same prompt once too and it does not scale. DVTS subtrees each send their own
    requests, so their prompts scale with them.
    """
    share = unit_share(k, of)
    prompt = tokens.policy_input if one_request else tokens.policy_input * share
    return TokenCounts(prompt, tokens.policy_output * share, tokens.prm * share)


def unit_share(k: int, of: int) -> float:
    """The share of a run's per-unit tokens (generated, PRM) that drawing ``k`` of its ``of``
    units keeps, in expectation."""
    if not 0 < k <= of:
        raise ValueError(f"a smaller budget draws 1 to {of} units, not {k}")
    return k / of
