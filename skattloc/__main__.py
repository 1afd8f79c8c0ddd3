"""``python -m skattloc``: the same command line as the ``skattloc`` console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
