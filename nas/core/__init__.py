"""The machinery every run shares: typed configs, processes (DistEnv), the one train/eval loop,
seeding, user errors, atomic files and the run directory (its names, writing and reading its state)."""
