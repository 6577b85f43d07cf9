"""Modelstore's own imports kept cheap in a fresh process.

Importing modelstore's modules allocates only objects that live as long as the process (classes,
functions, dataclass methods), enough of them to trigger a full garbage collection, which walks
every object numpy and the ML framework have built: 45 ms of a fresh process's 85 ms import, and
nothing to free. So automatic collection pauses while the package imports, and while what it
imports on first use does: the plugins, the load path, the plugin API's lazy names.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic garbage collection off for the block, then as it was (on or off)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
