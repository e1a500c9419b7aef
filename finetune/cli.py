"""`manyicl-finetune`: not implemented yet (see the project's issues)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="manyicl-finetune", description="Training: one LoRA adapter with the many-shot all-targets objective. (not implemented yet)")
    parser.parse_args(argv)
    raise SystemExit("manyicl-finetune: not implemented yet")


if __name__ == "__main__":
    main()
