"""Run every benchmark: `python -m bench` (or `make bench`)."""

from __future__ import annotations

from . import client, templates


def main() -> None:
    print("forcebot benchmarks (ratio = ours / bare baseline, measured in this run)")
    templates.run()
    client.run()


if __name__ == "__main__":
    main()
