"""`manyicl-eval`: not implemented yet (see the project's issues)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="manyicl-eval",
        description="Evaluation: held-out tasks scored at each shot count.",
        epilog="Not implemented yet.",
    )
    parser.parse_args(argv)
    raise SystemExit("manyicl-eval: not implemented yet")


if __name__ == "__main__":
    main()
