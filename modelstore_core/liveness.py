"""Whether the writer of an in-progress upload or temporary file is still running."""

from __future__ import annotations

import os

# The same name socket.gethostname() returns, without importing socket (startup time).
HOST = os.uname().nodename if hasattr(os, "uname") else __import__("socket").gethostname()


def process_alive(host: str | None, pid: object) -> bool | None:
    """``True``/``False`` for a process on this machine; ``None`` when it cannot be told
    (another machine's process): only its age can tell then."""
    if host != HOST or not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    return True
