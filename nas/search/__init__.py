"""The searches: the search network, perturb-val, the selection rules, the population, the decision
driver (decisions, checkpoints and resume, training stages) and the registry of search methods."""
