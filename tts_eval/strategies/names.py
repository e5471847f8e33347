"""The built-in strategies' names, in one place, for code that is about one of them by
design (the sweep's grid, the leaderboard's derived rows, the demo's runs). Everything
else reads a strategy's traits from the registry."""

COT = "cot"
MAJORITY = "majority"
BEST_OF_N = "best_of_n"
BEAM_SEARCH = "beam_search"
DVTS = "dvts"
PARTICLE_FILTERING = "particle_filtering"
COMPUTE_OPTIMAL = "compute_optimal"
