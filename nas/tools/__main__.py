"""python -m nas.tools: the same as the `pertnas` command."""

from nas.tools.cli import entry

if __name__ == "__main__":
    entry()
