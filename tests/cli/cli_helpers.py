"""Helpers to run the ``modelstore`` command: in-process (click's runner, the default), or the real
command in a subprocess where the process matters: piped, or on a pseudo-terminal."""

from __future__ import annotations

import fcntl
import importlib
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from modelstore_core.cli import main
from modelstore_core.plugins import reset_plugins
from modelstore_core.testing.faults import HANG_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "modelstore"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[list[str]]:
        """Plain output: tab-separated fields of each line."""
        return [line.split("\t") for line in self.stdout.splitlines()]


class EntryPoint:
    """What click's runner invokes (it calls ``.main(args=...)``): the console script's ``main()``
    itself, so its warning and error handling run too."""

    @staticmethod
    def main(args, **_) -> None:
        main(list(args))


class CLI:
    """The command line, against the store at ``root`` (through ``$MODELSTORE_URL``)."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.root = tmp_path / "store"
        self.env = {
            **os.environ,
            "MODELSTORE_URL": str(self.root),
            "MODELSTORE_CACHE_DIR": str(tmp_path / "cli-cache"),
            "COLUMNS": "160",
            "LINES": "50",
            "TERM": "xterm-256color",
            "NO_COLOR": "1",
        }
        self.env.pop("MODELSTORE_DISABLE_PLUGINS", None)
        self.env.pop("MODELSTORE_TRACE", None)

    def command(self, script: bool) -> list[str]:
        if script:
            assert SCRIPT.is_file(), f"no console script at {SCRIPT}: run `pip install -e .`"
            return [str(SCRIPT)]
        return [sys.executable, "-m", "modelstore_core"]

    def __call__(self, *args: str, env: dict | None = None, cwd: Path | None = None) -> Result:
        """Run in this process with click's runner, as the command would run piped: stdin, stdout
        and stderr are not terminals. The plugins are discovered afresh under ``env``, as a new
        process would."""
        args = [str(a) for a in args]
        env = {**self.env, **(env or {})}
        changed = {k: v for k, v in env.items() if os.environ.get(k) != v}
        unset = {k: None for k in ("MODELSTORE_DISABLE_PLUGINS", "MODELSTORE_TRACE") if k not in env}
        reset_plugins()
        try:
            # catch_warnings: main() replaces warnings.showwarning, for this run only.
            with chdir(cwd or self.tmp), warnings.catch_warnings(), path_from(env.get("PYTHONPATH")):
                warnings.simplefilter("default")  # a fresh interpreter's: each warning once
                result = CliRunner().invoke(EntryPoint, args, env={**changed, **unset}, prog_name="modelstore")
        finally:
            reset_plugins()
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(*result.exc_info))  # what the interpreter prints
        return Result(result.exit_code, result.stdout, stderr)

    def run(self, *args: str, script: bool = False, env: dict | None = None, cwd: Path | None = None) -> Result:
        """Run the real command in a subprocess, piped: stdin is not a terminal, stdout and stderr are pipes."""
        proc = subprocess.run(
            [*self.command(script), *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
            env={**self.env, **(env or {})},
            cwd=cwd or self.tmp,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def tty(self, *args: str, answer: str | None = None, env: dict | None = None, cwd: Path | None = None, columns: int = 160) -> Result:
        """Run on a pseudo-terminal (stdin, stdout and stderr) ``columns`` wide, as a person at a terminal would.

        ``stdout`` of the result is everything the terminal showed, ANSI codes removed.
        """
        env = {**(env or {}), "COLUMNS": str(columns)}
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        proc = subprocess.Popen(
            [*self.command(False), *map(str, args)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**self.env, **(env or {})},
            cwd=cwd or self.tmp,
            start_new_session=True,
        )
        os.close(slave)
        if answer is not None:
            os.write(master, answer.encode() + b"\n")
        chunks, deadline = [], time.monotonic() + HANG_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        proc.wait(timeout=10)
        return Result(proc.returncode, ANSI.sub("", b"".join(chunks).decode(errors="replace")), "")


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def path_from(pythonpath: str | None) -> Iterator[None]:
    """``$PYTHONPATH`` of a run, in this process: its directories on ``sys.path`` (where entry points
    are discovered too), and the modules imported from them forgotten afterwards."""
    extra = [p for p in (pythonpath or "").split(os.pathsep) if p and p not in sys.path]
    if not extra:
        yield
        return
    modules = set(sys.modules)
    sys.path[:0] = extra
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for p in extra:
            sys.path.remove(p)
        for name in set(sys.modules) - modules:
            if any(str(getattr(sys.modules[name], "__file__", "") or "").startswith(p) for p in extra):
                del sys.modules[name]
        importlib.invalidate_caches()


def one_line_error(result: Result) -> str:
    """The error a failed command printed: exactly one line on stderr, no traceback, nothing on stdout."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def fake_distribution(site: Path, name: str, module: str, source: str | None = None, version: str = "0.1.0") -> None:
    """Install a plugin distribution into the directory ``site`` the way pip lays it out (a dist-info
    with the entry point); ``source`` is written as the plugin module unless it lives elsewhere on the path."""
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "entry_points.txt").write_text(f"[modelstore]\n{name.removeprefix('modelstore-')} = {module}\n")
    if source is not None:
        (site / f"{module}.py").write_text(textwrap.dedent(source))


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def git(path: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    return subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True, text=True).stdout.strip()


def git_repo(path: Path) -> Path:
    """A git working tree with one commit."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('train')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path
