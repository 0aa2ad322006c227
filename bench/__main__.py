"""Run every benchmark: `python -m bench` (or `make bench`); `--quick` for CI-sized runs."""

from __future__ import annotations

import argparse

from . import client, schedules, templates


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    print("forcebot benchmarks (ratio = ours / bare baseline, measured in this run)")
    templates.run()
    client.run()
    schedules.run(200 if args.quick else 10_000)


if __name__ == "__main__":
    main()
