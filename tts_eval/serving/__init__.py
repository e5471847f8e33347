"""Serving helpers that policy backends and PRM runtimes share: requests to OpenAI-compatible
servers (:mod:`.http`), what every use of vLLM needs (:mod:`.vllm`), and parameter counts of
checkpoints from their config (:mod:`.checkpoints`). Nothing here knows policies or PRMs."""
