"""The lm-evaluation-harness integration: the ``tts`` model, its settings, the resume
checkpoint, the runner behind ``tts-eval run``, and what tts-eval's tasks compute.

Nothing here is imported at interpreter start: ``tts_eval_lm_eval_hook`` (a top-level module
loaded by ``tts_eval_lm_eval.pth``) calls :mod:`tts_eval.lm_eval.registration` only once
lm-eval itself is being imported.
"""
