"""modelstore-web: a read-only web view of a store, ``modelstore serve``.

This module holds only the hook implementation; loading plugins never imports the web stack
(Starlette, Jinja2, uvicorn load when the command runs).
"""

from __future__ import annotations

from modelstore_core.plugin_api import hookimpl


@hookimpl
def modelstore_cli_commands() -> list:
    from .cli import serve

    return [serve]
