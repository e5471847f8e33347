"""math500_tts: MATH-500 problems; metrics from the tts model's search results."""

from tts_eval.lm_eval.benchmarks import load_benchmark
from tts_eval.lm_eval.task_metrics import SearchResultFilter, process_results, total

__all__ = ["SearchResultFilter", "load_docs", "process_results", "total"]


def load_docs(**_task_metadata):
    """The 500 problems (problem, solution, answer, subject, level, unique_id)."""
    return load_benchmark("math500")
