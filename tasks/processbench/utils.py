"""ProcessBench tasks: documents, prompt, per-sample results and the three metrics."""

from tts_eval.lm_eval.processbench_task import correct_acc, doc_to_text, error_acc, f1, load_docs, process_results

__all__ = [
    "correct_acc",
    "doc_to_text",
    "error_acc",
    "f1",
    "load_gsm8k",
    "load_math",
    "load_olympiadbench",
    "load_omnimath",
    "load_toy",
    "process_results",
]


def load_gsm8k(**_task_metadata):
    return load_docs("gsm8k")


def load_math(**_task_metadata):
    return load_docs("math")


def load_olympiadbench(**_task_metadata):
    return load_docs("olympiadbench")


def load_omnimath(**_task_metadata):
    return load_docs("omnimath")


def load_toy(**_task_metadata):
    """The toy ProcessBench shipped with tts_eval.toy (id, generator, problem, steps,
    final_answer_correct, label, difficulty)."""
    from tts_eval.lm_eval.processbench_task import load_toy_docs

    return load_toy_docs()
