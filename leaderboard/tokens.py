"""Token counts of runs by models other than ``tts``, which record none.

When the model's tokenizer can be loaded from local files (``pretrained=`` of the run's
model_args, or its ``tokenizer=``), each problem's prompt and response, as the samples
file holds them, are tokenized again: tokens = prompt + response, without the stop string
or EOS that ended the response. Otherwise the run's tokens (and FLOPs) stay unknown.
"""

from __future__ import annotations

from leaderboard.runs import Run

TOKENIZER_ARGS = ("tokenizer", "pretrained", "model")


def count_tokens_of_other_models(run: Run) -> None:
    """Fill ``policy_tokens`` of a non-tts run's problems, or say why not (``tokens_note``)."""
    if all(p.policy_tokens is not None for task in run.tasks.values() for p in task.problems):
        return
    source = next((str(run.settings.model_args[k]) for k in TOKENIZER_ARGS if run.settings.model_args.get(k)), None)
    tokenizer, why = _load_tokenizer(source)
    for task in run.tasks.values():
        if tokenizer is None:
            task.tokens_note = why
            continue
        if any(p.prompt_text is None or p.response_text is None for p in task.problems):
            task.tokens_note = f"tokens unknown: {task.samples_file.name} lacks prompts or responses"
            continue
        for p in task.problems:
            assert p.prompt_text is not None and p.response_text is not None  # checked above
            p.policy_tokens = float(_length(tokenizer, p.prompt_text) + _length(tokenizer, p.response_text))
        task.tokens_note = f"tokens counted by re-tokenizing prompts and responses with the tokenizer of {source}"


def _load_tokenizer(source: str | None):
    if source is None:
        return None, "tokens unknown: the run's model_args name no tokenizer"
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source, local_files_only=True), None
    except (OSError, ValueError, ImportError) as err:
        return None, f"tokens unknown: the tokenizer of {source} is not available locally ({type(err).__name__})"


def _length(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
