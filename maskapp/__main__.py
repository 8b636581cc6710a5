"""`python -m maskapp ...`: the command line (maskapp.cli)."""

import sys

from maskapp.cli import main

if __name__ == "__main__":
    sys.exit(main())
