"""``python -m feedsvc``: the same command line as the ``feedsvc`` script."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main(prog_name="feedsvc")
