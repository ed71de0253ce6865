"""Command-line tools, above every other floor: the `pertnas` command and the tools it lists."""
