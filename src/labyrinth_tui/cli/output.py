"""The one door from the CLI to the terminal: everything printed passes inert(), so no outside text drives it.

Names, errors and packets come from files, nodes and packets; any of them may hold an escape sequence
(a window title, a clear screen). Rather than trust every `click.echo` to remember, the `labyrinth`
group swaps sys.stdout/sys.stderr for InertStream while a command runs: click's echo, its error
messages and plain writes all go through it. The TUI is not affected: Textual draws on
sys.__stderr__, the real stream, and its widgets get their text through ui/messages.py.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

from labyrinth_tui.model.text import inert


class InertStream(io.TextIOBase):
    """A text stream that writes to `inner` what inert() leaves of each write (newlines and tabs kept)."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(inert(text, keep_lines=True))
        return len(text)  # what the caller gave: it must not retry the part that was dropped

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        # click checks encoding/errors to decide whether it may write to the stream as it is
        return str(getattr(self.inner, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)


@contextmanager
def inert_output() -> Iterator[None]:
    """sys.stdout and sys.stderr go through InertStream until the block ends."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = InertStream(out), InertStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


class InertGroup(click.Group):
    """The root command: every subcommand runs with its output made inert."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with inert_output():
            return super().main(*args, **kwargs)
