"""``python -m experiments.run NAME`` runs a registered experiment; ``--list`` shows them all."""

from __future__ import annotations

import argparse
import sys

from experiments import registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__)
    parser.add_argument("name", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the registered experiments")
    args = parser.parse_args(argv)
    if args.list:
        for name in registry.names():
            print(f"{name:24s} {registry.get(name).summary}")
        return 0
    if not args.name:
        parser.error("give an experiment NAME, or --list to see them")
    try:
        experiment = registry.get(args.name)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    experiment.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
