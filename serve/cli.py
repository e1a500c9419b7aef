"""`manyicl-serve`: not implemented yet (see the project's issues)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="manyicl-serve",
        description="Serving: an OpenAI-compatible many-shot server on vLLM with prefix caching.",
        epilog="Not implemented yet.",
    )
    parser.parse_args(argv)
    raise SystemExit("manyicl-serve: not implemented yet")


if __name__ == "__main__":
    main()
