"""Training cells from scratch: NetworkCIFAR and NetworkImageNet, the evaluation run, its
learning-rate schedules, and the cost of a network (parameters, MACs)."""
