"""What every command shares: the store it opens, how it prints, and how errors read.

Three output modes, chosen once per run:

* ``rich``: stdout is a terminal: tables, colours, progress bars (rich is imported only here);
* ``plain``: stdout is piped: tab-separated lines, no header, no colour; notes go to stderr;
* ``json``: ``--json`` was given: one JSON document on stdout, wherever it goes.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from datetime import datetime
from functools import cached_property
from typing import Any

import click

from ..display import pairs_text, value_text
from ..errors import DomainNotFoundError, ModelStoreError, StateNotFoundError, VersionNotFoundError


class CommandLine:
    """One run of the command line: the options given anywhere on it, the store they name (opened
    on first use) and how output is printed."""

    def __init__(self) -> None:
        self.store_url: str | None = None
        self.timeout: float | None = None
        self.json = False
        self.debug = False
        self._store = None

    @property
    def mode(self) -> str:
        if self.json:
            return "json"
        return "rich" if sys.stdout.isatty() else "plain"

    def store(self, *, existing: bool = False):
        """The :class:`ModelStore` of ``--store``, else ``$MODELSTORE_URL``, else the per-user default.

        ``existing``: the command only reads, so a store named by ``--store`` or ``$MODELSTORE_URL``
        that does not exist (a local directory: a typo in its path) is an error, not an empty store.
        Commands that write create it; the per-user default is simply empty until they do.
        """
        if self._store is None:
            from ..store import ModelStore

            self._store = ModelStore(self.store_url, timeout=self.timeout)
        named = "--store" if self.store_url is not None else "$MODELSTORE_URL" if os.environ.get("MODELSTORE_URL") else None
        if existing and named and not self._store.storage.exists():
            raise CLIError(
                f"the store {self._store.url} ({named}) does not exist: a typo in its path? Nothing is stored there yet;"
                " a command that writes (`modelstore upload`) creates it"
            )
        return self._store

    @property
    def opened_store(self):
        """The store this run opened, if it did."""
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # --- printing -------------------------------------------------------------------

    @cached_property
    def console(self):
        from rich.console import Console

        return Console(highlight=False)

    @cached_property
    def err_console(self):
        from rich.console import Console

        return Console(stderr=True, highlight=False)

    @property
    def progress_allowed(self) -> bool:
        """Progress bars and spinners go to stderr, and only when it is a terminal."""
        return sys.stderr.isatty()

    def emit_json(self, obj: Any) -> None:
        # json escapes C0 controls itself; DEL and C1 (\x9b is a terminal's CSI) are escaped here.
        text = json.dumps(obj, indent=2, ensure_ascii=False, default=str)
        click.echo(_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text))

    def emit_rows(self, rows: list[list[Any]]) -> None:
        """Plain mode: one tab-separated line per row."""
        for row in rows:
            click.echo("\t".join(plain_cell(c) for c in row))

    def note(self, message: str) -> None:
        """A human message (what happened, what to do next): never on a piped stdout."""
        if self.mode == "rich":
            self.console.print(message)
        else:
            click.echo(strip_markup(message), err=True)


pass_cmdline = click.make_pass_decorator(CommandLine, ensure=True)


# --- formatting -----------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_C1 = re.compile(r"[\x7f-\x9f]")


def printable(text: Any) -> str:
    """``text`` with every control character (newline, tab, escape...) shown as ``\\xNN``.

    Everything printed from a store goes through this: a store may have been written by another
    tool, and a tag holding an escape sequence or a newline must not reach the terminal raw or
    forge rows in piped output.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def plain_cell(value: Any) -> str:
    """One field of a piped line: values as :func:`~modelstore_core.display.value_text` writes them,
    an object as ``k=v,k=v`` and a list as ``a,b`` (no spaces: a field holds no blank)."""
    if isinstance(value, dict):
        return printable(pairs_text(value, ","))
    if isinstance(value, (list, tuple)):
        return printable(",".join(value_text(v, "null") for v in value))
    return printable(value_text(value))


def strip_markup(message: str) -> str:
    from re import sub

    return sub(r"\[/?[a-z #0-9_.=-]*\]", "", message)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def human_time(iso: str | datetime | None) -> str:
    """Local time, to the second, for terminals (JSON and plain output keep ISO 8601 UTC)."""
    if iso is None:
        return ""
    when = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def escape(text: Any) -> str:
    """``text`` for rich output: markup and control characters made inert.

    For each value from outside (a store, a plugin), never for text that holds the command's own
    layout: escape the parts, then join them with line breaks (``"\\n".join(escape(x) for x in ...)``).
    """
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))


# --- errors -----------------------------------------------------------------------------


class CLIError(click.ClickException):
    """An error reported as one line on stderr (``Error: ...``), exit status 1."""

    exit_code = 1


def describe_error(exc: BaseException, store=None) -> str:
    """One line: what went wrong and, where there is one, what to do next (with the store the
    command opened, the names closest to a mistyped domain or state)."""
    if isinstance(exc, DomainNotFoundError):
        msg = f"{exc}{did_you_mean(exc.domain, lambda: store.list_domains())}; `modelstore ls` lists the domains"
    elif isinstance(exc, VersionNotFoundError):
        msg = f"{exc}; `modelstore ls {exc.domain}` lists its versions"
    elif isinstance(exc, StateNotFoundError):
        msg = f"{exc}{did_you_mean(exc.state, lambda: list(store.states(exc.domain)))}; `modelstore state ls {exc.domain}` lists its states"
    elif isinstance(exc, ModelStoreError):
        msg = exc.cli_message or str(exc)  # the command line's flags, not the keyword arguments
    elif isinstance(exc, FileNotFoundError) and exc.filename:
        msg = f"no such file or directory: {exc.filename}"
    elif isinstance(exc, PermissionError) and exc.filename:
        msg = f"permission denied: {exc.filename}"
    elif isinstance(exc, OSError) and exc.strerror:
        msg = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        msg = f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)"
    return printable(" ".join(msg.split()))  # one line, whatever a backend or a store put in it


def did_you_mean(name: str, candidates) -> str:
    """``" (did you mean 'fraud'?)"`` when ``candidates()`` holds names close to ``name`` (difflib's
    measure), else ``""`` (also when they cannot be listed)."""
    try:
        close = difflib.get_close_matches(name, candidates(), n=3)
    except (ModelStoreError, AttributeError):  # no store opened, or it cannot be listed now
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
