"""``modelstore serve``: the web view, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import ipaddress
import socket

import click

from modelstore_core.cli import CLIError, CommandLine, common_options, pass_cmdline

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """What to say before listening on ``host``, when others may reach it."""
    if is_loopback(host):
        return None
    return (
        f"listening on {host}: anyone who can reach this machine can read every model in the store"
        " (the view has no login); use the default --host 127.0.0.1 unless that is what you want"
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port), or a one-line error."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        raise CLIError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; choose another --port (0 picks a free one)") from None
    return sock


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface, with a warning).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option(
    "--cache-seconds",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="How long the pages' storage reads are kept (0: every page reads the store).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name the browser may use to reach the server (repeatable). Default: the loopback names on"
    " 127.0.0.1, any name on other addresses.",
)
@common_options
@pass_cmdline
def serve(cmdline: CommandLine, host: str, port: int, cache_seconds: float, allowed_hosts: tuple[str, ...]) -> None:
    """A read-only web view of the store: domains, versions with filters, a version's metadata and
    files, comparisons, metric plots, verified downloads.

    Nothing is ever written to the store. Stops on Ctrl-C.
    """
    import uvicorn

    from .app import create_app

    store = cmdline.store()
    if warning := exposure_warning(host):
        click.echo(f"warning: {warning}", err=True)
    hosts = list(allowed_hosts) or (["127.0.0.1", "localhost", "::1", host] if is_loopback(host) else ["*"])
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    click.echo(f"Serving {store.url} read-only at http://{shown}:{bound}/ (Ctrl-C stops)")
    app = create_app(store, ttl=cache_seconds, allowed_hosts=hosts)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn has shut down cleanly and passes the signal on; stopping is the normal way out
    finally:
        sock.close()
