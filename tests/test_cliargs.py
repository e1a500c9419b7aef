"""`exits_on`: the errors a command lists end it as argparse ends a bad flag; others pass."""

from __future__ import annotations

import pytest

from manyicl.cliargs import exits_on


@pytest.mark.parametrize(
    "error, listed, exits",
    [
        (FileNotFoundError("no such file: x"), (OSError,), True),  # a subclass of a listed one
        (ValueError("bad value"), (OSError, ValueError), True),
        (KeyError("a bug"), (OSError, ValueError), False),  # not listed: the traceback stays
        (None, (ValueError,), False),  # nothing raised: the block's result stands
    ],
)
def test_exits_on_listed_errors_only(capsys, error, listed, exits):
    def block() -> None:
        with exits_on("prog", *listed):
            if error is not None:
                raise error

    if exits:
        with pytest.raises(SystemExit) as e:
            block()
        assert e.value.code == 2
        assert capsys.readouterr().err == f"prog: error: {error}\n"
    elif error is not None:
        with pytest.raises(type(error)):
            block()
    else:
        block()
        assert capsys.readouterr().err == ""
