"""What every tts-eval lm-eval model shares: construction from lm-eval's CLI arguments."""

from __future__ import annotations

from typing import Any, TypeVar

from lm_eval.api.model import LM

from tts_eval.lm_eval.secrets import redact_in_place

Model = TypeVar("Model", bound="HarnessModel")


class HarnessModel(LM):
    """An lm-eval model built from ``--model_args`` plus the harness's own options
    (``--batch_size``, ``--device``), which each model merges as :meth:`with_harness_options` says."""

    @staticmethod
    def with_harness_options(model_args: dict[str, Any], harness: dict[str, Any]) -> dict[str, Any]:
        """lm-eval's ``--device`` when model_args name none and it exists (the CLI's default
        ``cuda:0`` is dropped on machines without CUDA); model_args win. lm-eval's batch sizes
        count requests, not a model's rows, so they are not used (set ``batch_size=``)."""
        device = harness.get("device")
        if device is None or "device" in model_args:
            return model_args
        if str(device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return model_args
        return {**model_args, "device": device}

    @classmethod
    def create_from_arg_obj(
        cls: type[Model], arg_dict: dict[str, Any], additional_config: dict[str, Any] | None = None
    ) -> Model:
        model_args = cls.with_harness_options(dict(arg_dict), additional_config or {})
        redact_in_place(arg_dict)  # lm-eval prints this dict in its closing summary line
        return cls(**model_args)

    @classmethod
    def create_from_arg_string(
        cls: type[Model], arg_string: str, additional_config: dict[str, Any] | None = None
    ) -> Model:
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)
