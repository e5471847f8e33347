"""The PRM families by name: each builds its inputs and reads its scores in one module."""

from __future__ import annotations

from prm_backends.chat_turn import ChatTurnFormat
from prm_backends.generative import GenerativeFormat
from prm_backends.spec import FAMILIES
from prm_backends.step_tag import StepTagFormat
from prm_backends.token_classifier import TokenClassifierFormat
from prm_backends.value_head import ValueHeadFormat

FORMATS = {
    "step_tag": StepTagFormat,
    "chat_turn": ChatTurnFormat,
    "value_head": ValueHeadFormat,
    "token_classifier": TokenClassifierFormat,
    "generative": GenerativeFormat,
}
assert tuple(FORMATS) == FAMILIES
