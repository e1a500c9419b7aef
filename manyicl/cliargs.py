"""Command lines from frozen config dataclasses: each field is one `--flag`, its help in
`field(metadata={"help": ...})`, its default the dataclass default. Validation stays in the
dataclass's `__post_init__`, so the CLI and the Python API check the same things."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def arg(help: str, **kwargs: Any) -> Any:
    """A dataclass field with its `--flag` help text (and `default=` if it has one)."""
    return dataclasses.field(metadata={"help": help}, **kwargs)


def add_dataclass_args(
    parser: argparse.ArgumentParser, cls: type, show_defaults: bool = True
) -> None:
    """One `--flag` per field of `cls` (underscores become dashes). `show_defaults=False`
    for parsers whose formatter already prints them (vLLM's)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        kind = _unwrap(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else _default(f)
        help_text = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
            continue
        if default is not None and show_defaults:
            help_text = f"{help_text} (default: {_show(default)})"
        kwargs: dict[str, Any] = {
            "type": kind,
            "default": default,
            "help": help_text,
            "required": required,
        }
        if issubclass(kind, Enum):
            kwargs.update(choices=list(kind), metavar="{" + ",".join(kind) + "}")
        parser.add_argument(flag, **kwargs)


def parse_dataclass(
    parser: argparse.ArgumentParser,
    cls: type[T],
    argv: list[str] | None = None,
    defaults: Callable[[argparse.Namespace], dict[str, Any]] | None = None,
) -> T:
    """Flags for `cls`, parsed from `argv`; an invalid value exits with its reason (status 2).
    `defaults`, given a first pass over `argv`, returns flag defaults that the flags given
    override (e.g. read from a `--config` file); a ValueError from it exits the same way."""
    add_dataclass_args(parser, cls)
    try:
        if defaults:
            parser.set_defaults(**defaults(parser.parse_known_args(argv)[0]))
        return from_args(cls, parser.parse_args(argv))
    except ValueError as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits


def run_command(
    prog: str, description: str, cls: type[T], argv: list[str] | None, work: Callable[[T], R]
) -> tuple[T, R]:
    """A subcommand: its config parsed from `argv`, then `work(config)`. Bad flags, and an
    OSError or ValueError from `work` (a missing file, an unloadable mixture), exit with the
    reason (status 2) instead of a traceback."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    cfg = parse_dataclass(parser, cls, argv)
    try:
        return cfg, work(cfg)
    except (OSError, ValueError) as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits


@contextmanager
def exits_on(prog: str, *errors: type[BaseException]) -> Iterator[None]:
    """The block, where one of `errors` (bad input, a file that cannot be had) ends the process
    as argparse ends it for a bad flag: `prog: error: <reason>` and status 2, no traceback."""
    try:
        yield
    except errors as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Build `cls` from parsed args; `__post_init__` validates."""
    names = {
        f.name for f in dataclasses.fields(cls) if f.init and f.metadata.get("cli") is not False
    }
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def _unwrap(hint: Any) -> type:
    """The flag's value type: X for `X` or `X | None`."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _show(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)
