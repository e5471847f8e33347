"""arith_tts: the toy world's test split (chained arithmetic, shipped in tts_eval/toy/data);
metrics from the tts model's search results, as in math500_tts."""

from tts_eval.lm_eval.task_metrics import SearchResultFilter, process_results, total

__all__ = ["SearchResultFilter", "load_docs", "process_results", "total"]


def load_docs(**_task_metadata):
    """The problems (problem, solution, answer, difficulty = number of operations, unique_id)."""
    import datasets

    from tts_eval.toy import load_test_problems

    rows = [
        {"problem": p.question, "solution": p.solution, "answer": p.answer, "difficulty": p.difficulty,
         "unique_id": f"arith/{i}"}
        for i, p in enumerate(load_test_problems())
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
