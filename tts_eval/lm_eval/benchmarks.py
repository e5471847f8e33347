"""The documents of tts-eval's lm-eval tasks: from the Hugging Face Hub by default, from
local JSONL files under ``$TTS_EVAL_DATA_DIR`` when it is set (then never from the network).
Where each benchmark's data lives is declared in :mod:`tts_eval.benchmarks`.

A relative ``$TTS_EVAL_DATA_DIR`` is relative to the working directory of the process that
was given it. The processes that start others (the ``tts-eval`` CLI, ``lm_eval`` with tts-eval
installed) rewrite it as an absolute path first (:func:`pin_data_dir`), so a child started in
another folder reads the same data.
"""

from __future__ import annotations

import os
from pathlib import Path

from tts_eval.benchmarks import DataSource, benchmark
from tts_eval.jsonl import read_jsonl

DATA_DIR_VARIABLE = "TTS_EVAL_DATA_DIR"


def data_dir() -> Path | None:
    """``$TTS_EVAL_DATA_DIR`` as an absolute path (resolved against the working directory),
    or None when it is unset or empty."""
    value = os.environ.get(DATA_DIR_VARIABLE)
    return Path(value).expanduser().absolute() if value else None


def pin_data_dir() -> None:
    """Rewrite a relative ``$TTS_EVAL_DATA_DIR`` in this process's environment as absolute,
    so child processes started in any folder inherit the folder the user meant."""
    path = data_dir()
    if path is not None:
        os.environ[DATA_DIR_VARIABLE] = str(path)


def data_source(name: str) -> DataSource:
    """Where the problems of the benchmark ``name`` come from."""
    source = benchmark(name).data
    if source is None:
        raise ValueError(f"benchmark {name!r} has no data source: its tasks build their documents themselves")
    return source


def load_benchmark(name: str):
    """``datasets.DatasetDict`` with one split, ``test``, holding every problem of ``name``;
    answers (where there are any) are strings."""
    import datasets

    data = data_source(name)
    folder = data_dir()
    if folder is not None:
        rows = _read_local(folder / data.local_file, data)
    else:
        rows = [dict(row) for row in datasets.load_dataset(data.hub_id, split=data.hub_split)]
        _check_fields(rows, data, source=f"{data.hub_id} ({data.hub_split} split)")
    for row in rows:
        if "answer" in row:
            row["answer"] = str(row["answer"])
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def _read_local(path: Path, benchmark: DataSource) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{DATA_DIR_VARIABLE}={os.environ.get(DATA_DIR_VARIABLE)} is set but {path} does not exist "
            f"(a relative {DATA_DIR_VARIABLE} is read from the working directory, {Path.cwd()}); put {benchmark.local_file} there "
            f"(the rows of {benchmark.hub_id}, one JSON object per line) or unset {DATA_DIR_VARIABLE} "
            "to read the Hub"
        )
    rows = read_jsonl(path)
    _check_fields(rows, benchmark, source=str(path))
    return rows


def _check_fields(rows: list[dict], benchmark: DataSource, source: str) -> None:
    if not rows:
        raise ValueError(f"{source}: no problems found")
    for number, row in enumerate(rows, 1):
        missing = [field for field in benchmark.required if field not in row]
        if missing:
            raise ValueError(f"{source}: row {number} lacks field(s) {', '.join(missing)}")
