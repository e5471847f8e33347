"""The per-problem resume checkpoint of the ``tts`` model.

One JSONL file per settings fingerprint: a header line with the settings, then one line per
finished problem (its key and its search result). Problems are appended as each search chunk
finishes, flushed and fsynced, so a run killed at any moment loses at most the chunk in
flight; a line torn by the kill is cut off on the next open. A restart with the same settings
opens the same file and skips every problem found in it; other settings open another file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tts_eval.serialization import result_from_dict, result_to_dict
from tts_eval.types import SearchResult

FORMAT_VERSION = 1


def fingerprint(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings that decide a search's results."""
    blob = json.dumps({"format": FORMAT_VERSION, **settings}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def problem_key(*parts: Any) -> str:
    """The checkpoint key of one problem: a hash of everything that identifies its request
    (task, question, prompt, stop strings, token limit)."""
    blob = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CheckpointStore:
    """Finished problems of one settings fingerprint, kept in ``<folder>/<fingerprint>.jsonl``."""

    def __init__(self, folder: str | Path, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.fingerprint = fingerprint(settings)
        self.path = Path(folder) / f"{self.fingerprint}.jsonl"
        self._results: dict[str, dict[str, Any]] = {}
        self._load()

    def __contains__(self, key: str) -> bool:
        return key in self._results

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: str) -> SearchResult:
        return result_from_dict(self._results[key])

    def add_all(self, entries: Iterable[tuple[str, SearchResult, dict[str, Any]]]) -> None:
        """Append finished problems ``(key, result, info)`` and make them durable; ``info`` is
        stored alongside for people reading the file (task, doc id)."""
        lines = []
        for key, result, info in entries:
            record = result_to_dict(result)
            self._results[key] = record
            lines.append(json.dumps({"key": key, **info, "result": record}, ensure_ascii=False) + "\n")
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", encoding="utf-8") as f:
            if new_file:
                header = {
                    "tts_eval_checkpoint": FORMAT_VERSION,
                    "fingerprint": self.fingerprint,
                    "settings": self.settings,
                }
                f.write(json.dumps(header, ensure_ascii=False) + "\n")
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            # The run was killed mid-write: drop the torn last line before appending.
            with open(self.path, "r+b") as f:
                f.truncate(complete)
        lines = data[:complete].decode("utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"checkpoint {self.path} line {number} is not valid JSON ({err.msg}); "
                    "delete the file to start this run afresh"
                ) from err
            if number == 1:
                self._check_header(record)
            else:
                self._results[record["key"]] = record["result"]

    def _check_header(self, header: dict[str, Any]) -> None:
        if header.get("tts_eval_checkpoint") != FORMAT_VERSION or header.get("settings") != self.settings:
            raise ValueError(
                f"checkpoint {self.path} was written for other settings than this run's; "
                "delete it (or choose another checkpoint folder) to start afresh"
            )
