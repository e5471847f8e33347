"""Learning a compute-optimal policy table from data, above the search it runs:
``tts-eval sweep`` (:mod:`.sweep`: every strategy x budget x aggregation x voting of one
policy, PRM and task, with per-problem outcomes) and ``tts-eval plan`` (:mod:`.plan`: fits a
table from sweeps, cross-validated). The table and the difficulty estimate the
compute-optimal strategy reads stay in ``tts_eval.compute_optimal``, below the search."""
