"""Bounded memory at any problem count: problems searched in waves under a cap give the
results of one lock-step call over all of them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tts_eval import search
from tts_eval.toy import load_test_problems
from tts_eval.toy.evaluate import as_problems, load_toy_policy, load_toy_prm


@pytest.mark.slow
def test_200_problems_in_waves_equal_lock_step():
    policy, prm = load_toy_policy("small"), load_toy_prm()
    problems = as_problems(policy, load_test_problems()[:200])
    settings = {"strategy": "beam_search", "n": 4, "seed": 7, "max_tokens": 40, "max_step_tokens": 16}
    lock_step = search(problems, policy, prm, **settings)
    waves = search(problems, policy, prm, max_problems=64, **settings)  # 64 + 64 + 64 + 8

    # Everything the policy decides is identical. The PRM's scores agree to float rounding:
    # the transformers PRM runtime pads each batch to its longest input, so a solution's
    # scores can move in the last bits with the batch it is scored in.
    for got, want in zip(waves, lock_step):
        assert [replace(t, step_scores=[]) for t in got.candidates] == [
            replace(t, step_scores=[]) for t in want.candidates
        ]
        assert got.answer == want.answer and got.prediction.steps == want.prediction.steps
        for t, u in zip(got.candidates, want.candidates):
            assert t.step_scores == pytest.approx(u.step_scores, abs=1e-5)
        # The PRM computes what its prefix cache does not hold: which prefixes are cached
        # depends on what else shares the cache, so only the tokens scored must agree.
        same = {"seconds": 0.0, "prm_tokens": 0, "flops": 0.0}
        assert replace(got.usage, **same) == replace(want.usage, **same)
        assert 0 < got.usage.prm_tokens <= got.usage.prm_scored_tokens
    assert len({r.prediction.num_tokens for r in lock_step}) > 3  # searches of different lengths
    assert sum(len(r.candidates) for r in lock_step) == 200 * 4 // 4  # K = N/M = 1 result each
    with pytest.raises(ValueError, match="max_problems must be at least 1"):
        search(problems[:1], policy, prm, max_problems=0, **settings)
