"""`manyicl-loadtest`: not implemented yet (see the project's issues)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="manyicl-loadtest",
        description="Load tests: many clients and demo sets against a server.",
        epilog="Not implemented yet.",
    )
    parser.parse_args(argv)
    raise SystemExit("manyicl-loadtest: not implemented yet")


if __name__ == "__main__":
    main()
