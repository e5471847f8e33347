"""The text the ``tts`` model returns to lm-eval, carrying the search result with it.

lm-eval hands a model's response string unchanged to the task's filters and then to its
``process_results``, logs it in the samples file and pickles it into ``--use_cache``. A
:class:`SearchResponse` is that string (the chosen candidate's solution, so stock tasks
extract their answers from it as from any model's output) with the whole search result
attached, for tts-eval's own tasks to read and log.
"""

from __future__ import annotations

from typing import Any


class SearchResponse(str):
    """A response string with ``search_result``: the search result as a JSON-ready dict
    (``tts_eval.serialization.result_to_dict``)."""

    search_result: dict[str, Any]

    def __new__(cls, text: str, search_result: dict[str, Any]) -> SearchResponse:
        response = super().__new__(cls, text)
        response.search_result = search_result
        return response

    def __reduce__(self):
        return (SearchResponse, (str(self), self.search_result))


def search_result_of(response: object) -> dict[str, Any] | None:
    """The search result a response carries, or None for a plain string (another model's)."""
    return getattr(response, "search_result", None)
