"""``python -m visual_robo_bench ...``: the ``vrb`` command line."""

import sys

from visual_robo_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
