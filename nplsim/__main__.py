"""``python -m nplsim``: the ``nplsim`` command line."""

import sys

from nplsim.experiments.cli import main

if __name__ == "__main__":
    sys.exit(main())
