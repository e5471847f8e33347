"""The ``prm`` lm-eval model: a PRM itself, judging step-labelled solutions (ProcessBench).

    lm_eval --model prm --model_args prm=qwen2.5-math-prm-7b,threshold=0.5 --tasks processbench

Each request's document holds a problem and the steps of a solution; the PRM scores every
step, and the answer is the first step scored below ``threshold`` (``-1``: no error found),
returned as the JSON of :func:`~tts_eval.lm_eval.processbench_task.prm_response`, step scores
included, so the samples file keeps them. ``--model_args``: ``prm`` (a shipped name or a YAML
path), ``threshold`` (default 0.5) and any field of the PRM spec (``model``, ``device``,
``dtype``, ``batch_size``, ``runtime``, ``max_length``, ...), checked before anything loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm.auto import tqdm

from tts_eval.lm_eval.harness import HarnessModel
from tts_eval.processbench import DEFAULT_THRESHOLD, first_error
from tts_eval.validation import describe_errors

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

# Solutions scored per progress-bar update (the PRM batches them by its own batch_size).
CHUNK = 64


class PRMModelArgsError(ValueError):
    """The ``prm`` model's model_args are unusable; the message names the argument and the fix."""


class PRMModelArgs(BaseModel):
    """``--model_args`` of the ``prm`` model; any other key is a field of the PRM spec."""

    model_config = ConfigDict(extra="allow", frozen=True)

    prm: str = Field(min_length=1, description="PRM name (a yaml_configs/prm file stem) or YAML path")
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0, le=1, description="A step scored below it is an error")

    @property
    def spec_overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def parse_prm_model_args(model_args: dict[str, Any]) -> PRMModelArgs:
    """Validate ``model_args`` and the PRM spec they give, loading no weights."""
    if model_args.get("prm") in (None, ""):
        raise PRMModelArgsError(
            "model_args: 'prm' is missing; give the PRM to evaluate, e.g. --model_args prm=qwen2.5-math-prm-7b "
            "(a shipped name, see `tts-eval prm list`, or a YAML path)"
        )
    try:
        args = PRMModelArgs.model_validate(model_args)
    except ValidationError as exc:
        problems = describe_errors(exc, label="")
        raise PRMModelArgsError(f"model_args: {problems}") from None
    from prm_backends import load_spec

    try:
        load_spec(args.prm, **args.spec_overrides)
    except ValueError as err:  # PRMConfigError: names the file, the field and the fix
        raise PRMModelArgsError(
            f"model_args 'prm={args.prm}': {err} (keys besides prm and threshold are fields of the PRM spec)"
        ) from None
    return args


class PRMLM(HarnessModel):
    """lm-eval model ``prm``."""

    def __init__(self, **model_args: Any) -> None:
        super().__init__()
        self.args = parse_prm_model_args(model_args)
        from prm_backends import load_prm, load_spec

        self.spec = load_spec(self.args.prm, **self.args.spec_overrides)
        self.prm = load_prm(self.args.prm, **self.args.spec_overrides)

    def get_model_info(self) -> dict[str, Any]:
        """Added to the ``config`` of the results JSON."""
        return {
            "prm_num_parameters": self.prm.num_parameters,
            "prm_judge": {
                "prm": self.args.prm,
                "prm_name": self.prm.name,
                "family": self.spec.family,
                "model": self.spec.model,
                "threshold": self.args.threshold,
                "processbench_f1_published": self.spec.processbench_f1,
            },
        }

    @property
    def tokenizer_name(self) -> str:
        return self.prm.name.replace("/", "__")

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        from tts_eval.lm_eval.processbench_task import prm_response

        items = [_item(request) for request in requests]
        scores: list[list[float]] = []
        with tqdm(total=len(items), desc=f"prm {self.prm.name}", unit="solution", disable=disable_tqdm) as bar:
            for start in range(0, len(items), CHUNK):
                chunk = items[start : start + CHUNK]
                scores += self.prm.score_batch(chunk)
                bar.update(len(chunk))
        responses = []
        for request, step_scores in zip(requests, scores):
            response = prm_response(first_error(step_scores, self.args.threshold), step_scores, self.args.threshold)
            self.cache_hook.add_partial("generate_until", request.args, response)
            responses.append(response)
        return responses

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise NotImplementedError(_STEP_TASKS_ONLY)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError(_STEP_TASKS_ONLY)


_STEP_TASKS_ONLY = (
    "the prm model judges step-labelled solutions (generative tasks whose documents hold 'problem' and 'steps', "
    "such as processbench_gsm8k or processbench_toy); it cannot score other text"
)


def _item(request: Instance) -> tuple[str, list[str]]:
    doc = request.doc
    if not isinstance(doc, dict) or not isinstance(doc.get("problem"), str) or not isinstance(doc.get("steps"), list):
        raise ValueError(
            f"task {request.task_name!r}: its documents hold no 'problem' and 'steps' (a solution's steps); {_STEP_TASKS_ONLY}"
        )
    return doc["problem"], [str(step) for step in doc["steps"]]
