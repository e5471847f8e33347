"""arith_tts: the toy world's test split (chained arithmetic, shipped in tts_eval/toy/data);
metrics from the tts model's search results, as in math500_tts. arith_tts_dev and
arith_tts_heldout read its two halves (tts_eval.toy.SPLITS)."""

from tts_eval.lm_eval.task_metrics import SearchResultFilter, process_results, total

__all__ = ["SearchResultFilter", "load_docs", "process_results", "total"]


def load_docs(**_task_metadata):
    """The problems (problem, solution, answer, difficulty = number of operations, unique_id =
    ``arith/<index in the test split>``): split ``test`` holds all of them, ``development``
    and ``heldout`` the halves."""
    import datasets

    from tts_eval.toy import SPLITS, load_test_problems

    rows = [
        {
            "problem": p.question,
            "solution": p.solution,
            "answer": p.answer,
            "difficulty": p.difficulty,
            "unique_id": f"arith/{i}",
        }
        for i, p in enumerate(load_test_problems())
    ]
    splits = {"test": rows} | {name: [rows[i] for i in SPLITS[name]] for name in ("development", "heldout")}
    return datasets.DatasetDict({name: datasets.Dataset.from_list(part) for name, part in splits.items()})
