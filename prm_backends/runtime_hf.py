"""The transformers runtime: loads a PRM of any family and scores solutions in padded batches.

The family builds each input and reads its scores, and :class:`FormatScorer` fits inputs into
``max_length`` (dropping trailing steps, which score NaN); this module loads the model, sorts
the inputs by length, pads them (right, or left with an attention mask and shifted position
ids), runs the backbone once per batch and applies the head only at the score positions.
"""

from __future__ import annotations

import torch

from prm_backends.inputs import PRMInput
from prm_backends.runtime_base import FormatScorer, check_max_length
from prm_backends.spec import PRMSpec


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class HFProcessRewardModel(FormatScorer):
    """A :class:`~prm_backends.base.ProcessRewardModel` run with transformers."""

    runtime = "hf"
    scores_value_head = True

    def __init__(self, spec: PRMSpec) -> None:
        super().__init__(spec)
        self.device = resolve_device(spec.device)
        self.parts = self.format.load_hf_model(spec, device=self.device)
        check_max_length(spec, self.parts.config)
        self.num_parameters = self.parts.num_parameters
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def head_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        # A generative judge's prompts are sequences of their own, each scored at its end.
        if any(inp.prompts is not None for inp in inputs):
            rows = iter(self._sequence_outputs([PRMInput(p, [len(p) - 1]) for inp in inputs for p in inp.prompts]))
            return [torch.cat([next(rows) for _ in inp.prompts]) for inp in inputs]
        return self._sequence_outputs(inputs)

    def _sequence_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        outputs: list[torch.Tensor] = [torch.empty(0)] * len(inputs)
        # Longest first, so each batch holds inputs of similar length and pads little.
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i].input_ids))
        for start in range(0, len(order), self.spec.batch_size):
            chunk = order[start : start + self.spec.batch_size]
            for i, head in zip(chunk, self._forward([inputs[i] for i in chunk])):
                outputs[i] = head
        return outputs

    @torch.inference_mode()
    def _forward(self, batch: list[PRMInput]) -> list[torch.Tensor]:
        width = max(len(inp) for inp in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, counts = [], [], []
        for b, inp in enumerate(batch):
            n = len(inp)
            offset = width - n if self.spec.padding_side == "left" else 0
            ids[b, offset : offset + n] = torch.tensor(inp.input_ids)
            mask[b, offset : offset + n] = 1
            rows += [b] * len(inp.score_positions)
            cols += [offset + p for p in inp.score_positions]
            counts.append(len(inp.score_positions))
        # Right padding puts every pad after the real tokens, where a causal model never looks
        # from a real token, and keeps their positions 0..n-1: a mask and position ids would
        # change no score, yet they force the masked (several times slower) attention kernels.
        # Left padding needs both: the mask hides the pads, and position ids that count real
        # tokens only keep the pads from shifting the positions.
        options = {}
        if self.spec.padding_side == "left" and not bool(mask.all()):
            options["attention_mask"] = mask.to(self.device)
            options["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(self.device)
        hidden = self.parts.backbone(input_ids=ids.to(self.device), use_cache=False, **options).last_hidden_state
        at_positions = hidden[torch.tensor(rows, device=hidden.device), torch.tensor(cols, device=hidden.device)]
        return list(self.parts.head(at_positions).split(counts))

    @torch.inference_mode()
    def generate_tokens(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        """Greedy decoding with the backbone's KV cache, one prompt at a time (no padding
        can shift a token's position)."""
        eos = self.tokenizer.eos_token_id
        written = []
        for prompt in prompts:
            ids = torch.tensor([prompt], device=self.device)
            out = self.parts.backbone(input_ids=ids, use_cache=True)
            tokens: list[int] = []
            while len(tokens) < max_tokens:
                token = int(self.parts.head(out.last_hidden_state[:, -1]).argmax(-1))
                if token == eos:
                    break
                tokens.append(token)
                out = self.parts.backbone(
                    input_ids=torch.tensor([[token]], device=self.device), past_key_values=out.past_key_values, use_cache=True
                )
            written.append(tokens)
        return written
