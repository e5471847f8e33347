"""aime24_tts: AIME 2024 problems; metrics from the tts model's search results."""

from tts_eval.lm_eval.benchmarks import load_benchmark
from tts_eval.lm_eval.task_metrics import SearchResultFilter, process_results, total

__all__ = ["SearchResultFilter", "load_docs", "process_results", "total"]


def load_docs(**_task_metadata):
    """The 30 problems of AIME 2024 I and II (id, problem, solution, answer, url)."""
    return load_benchmark("aime24")
