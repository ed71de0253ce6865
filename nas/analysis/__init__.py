"""Reading what runs left behind: run directories, the table of runs across seeds, and
NAS-Bench-301 configurations and queries."""
