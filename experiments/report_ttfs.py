"""``python -m experiments.report_ttfs DIR``: the former name of ``python -m
experiments.redraw DIR`` (:mod:`experiments.redraw`), kept so that scripts keep working."""

import sys

from experiments.redraw import main

if __name__ == "__main__":
    sys.exit(main())
