"""The web application: read-only pages over a :class:`~modelstore_core.ModelStore`.

Safe by construction, since everything shown comes from a store that anyone with write access
may have filled:

* every value goes through Jinja2's autoescaping (a tag ``<script>`` is text), and the
  Content-Security-Policy allows no script at all, from anywhere (the plot is SVG drawn here);
* GET and HEAD only (anything else is 405 before any route runs); nothing writes to the store;
* a download serves only a file of the version's record, named by its index or its exact recorded
  path, from the core's verified cache (checked against its sha256 before a byte is sent);
* the Host header must name the server (no DNS rebinding from a web page) unless the server was
  started on a public address.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from modelstore_core import (
    CorruptArtifactError,
    CorruptRecordError,
    IntegrityError,
    InvalidNameError,
    ModelStore,
    ModelStoreError,
    NotFoundError,
    StorageError,
    UntrustedSignatureError,
    UsageError,
)
from modelstore_core.card import model_card
from modelstore_core.display import (
    FOLDED,
    clipped,
    first_entries,
    flatten,
    human_size,
    restated,
    shape_text,
    unset,
    value_text,
    value_texts,
)
from modelstore_core.fields import FIELDS

from . import plot
from .reader import DOMAINS_PER_PAGE, MAX_COMPARE, MAX_LIMIT, StoreReader

#: No script from anywhere, styles only from this server, nothing embeddable elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
#: Filter expressions one page takes at most, and their length.
MAX_WHERE, MAX_EXPRESSION = 10, 200
#: Metric columns a versions table shows at most (the plot and compare pages show every metric).
METRIC_COLUMNS = 8


class ReadOnly:
    """ASGI middleware, before any route: GET and HEAD only (405 otherwise), no websockets, a
    ``Host`` header naming one of ``allowed_hosts`` (400 otherwise; ``"*"`` allows any), and the
    security headers on every response.

    The host check is this middleware's own, not Starlette's ``TrustedHostMiddleware``, which
    cannot read an IPv6 literal (``[::1]:8000``).
    """

    def __init__(self, app, allowed_hosts: list[str]):
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        if scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("This is a read-only view: GET and HEAD only.\n", 405, headers={"Allow": "GET, HEAD"})
        elif not self.any_host and not self._host_allowed(Headers(scope=scope).getlist("host")):
            response = PlainTextResponse("Invalid host header: open this view through the address it was started on.\n", 400)
        else:
            await self.app(scope, receive, send_with_headers)
            return
        await response(scope, receive, send_with_headers)

    def _host_allowed(self, headers: list[str]) -> bool:
        """Exactly one ``Host`` header, whose host is one of ``allowed_hosts``."""
        return len(headers) == 1 and host_name(headers[0]) in self.allowed_hosts


#: A ``Host`` header as RFC 9110 and 3986 write it, ``host[:port]``, of the hosts a view can be
#: reached by: a bracketed IPv6 address, or a name or IPv4 address of letters, digits, dots and
#: dashes; then a numeric port. Nothing else (user info, a second address, a zone, a path) passes.
_HOST_HEADER = re.compile(r"(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+))(?::[0-9]{1,5})?")


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``, ``Localhost:80`` ->
    ``localhost``); ``None`` unless the whole header is ``host[:port]`` (:data:`_HOST_HEADER`, the
    brackets around a valid IPv6 address)."""
    match = _HOST_HEADER.fullmatch(header.lower())
    if match is None:
        return None
    if match[1] is not None:
        try:
            ipaddress.IPv6Address(match[1])
        except ValueError:
            return None
        return match[1]
    return match[2]


# --- URLs and formatting ---------------------------------------------------------------------


def domain_url(domain: str, **query: Any) -> str:
    return f"/d/{quote(domain, safe='')}" + _query(query)


def version_url(domain: str, version: int) -> str:
    return f"{domain_url(domain)}/v/{int(version)}"


def file_url(domain: str, version: int, index: int) -> str:
    return f"{version_url(domain, version)}/files/{int(index)}"


def card_url(domain: str, version: int) -> str:
    return f"{version_url(domain, version)}/card"


def ref_url(ref: str) -> str:
    """The page of a version named ``DOMAIN:VERSION`` (a parent)."""
    domain, _, number = ref.rpartition(":")
    return version_url(domain, int(number))


def compare_url(domain: str, versions: list[int], **query: Any) -> str:
    return f"{domain_url(domain)}/compare" + _query({"v": [int(v) for v in versions], **query})


def plot_url(domain: str, metric: str) -> str:
    return f"{domain_url(domain)}/plot" + _query({"metric": metric})


def _query(params: dict[str, Any]) -> str:
    pairs = [
        (k, v) for k, values in params.items() for v in (values if isinstance(values, (list, tuple)) else [values]) if v not in (None, "")
    ]
    return "?" + urlencode(pairs) if pairs else ""


def utc(value: datetime | str | None) -> str:
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def templates() -> Environment:
    env = Environment(loader=PackageLoader("modelstore_web", "templates"), autoescape=True, undefined=StrictUndefined)
    # Every value reads as on the command line (modelstore_core.display): ``show`` one value,
    # ``show_all`` the versions of a row of a comparison; ``clip`` and ``entries`` bound what one
    # record can put on a page.
    env.filters.update(
        size=human_size, utc=utc, show=value_text, show_all=value_texts, shape=shape_text, clip=clipped, entries=first_entries
    )
    env.globals.update(
        domain_url=domain_url, version_url=version_url, file_url=file_url, compare_url=compare_url, plot_url=plot_url, card_url=card_url,
        ref_url=ref_url,
    )  # fmt: skip
    return env


# --- the application ------------------------------------------------------------------------


def status_of(exc: ModelStoreError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (UsageError, InvalidNameError)):
        return 400
    if isinstance(exc, UntrustedSignatureError):
        return 403
    if isinstance(exc, (IntegrityError, CorruptRecordError, CorruptArtifactError, StorageError)):
        return 502  # the store answered with something wrong, or not at all
    return 500


def create_app(store: ModelStore, *, ttl: float = 5.0, allowed_hosts: list[str] | None = None) -> Starlette:
    """The read-only web view of ``store``.

    :param ttl: seconds the pages' reads are kept (see :mod:`modelstore_web.reader` for what each page costs).
    :param allowed_hosts: host names the ``Host`` header may carry (``["*"]``: any); default the
        loopback names, for a server on 127.0.0.1.
    """
    reader = StoreReader(store, ttl=ttl)
    env = templates()

    def page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(store_url=store.url, path=request.url.path, **context)
        return HTMLResponse(html, code, headers={"cache-control": "no-store"})

    def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise UsageError(f"{name}={raw[:20]!r}: give a whole number from {low} to {high}")
        return int(raw)

    def domains(request: Request) -> Response:
        names = reader.domains()
        pages = max(1, math.ceil(len(names) / DOMAINS_PER_PAGE))
        number = query_int(request, "page", 1, 1, pages)
        shown = names[(number - 1) * DOMAINS_PER_PAGE : number * DOMAINS_PER_PAGE]
        return page(request, "domains.html", rows=reader.domain_rows(shown), total=len(names), page=number, pages=pages)

    def versions(request: Request) -> Response:
        domain = request.path_params["domain"]
        where = tuple(w.strip() for w in request.query_params.getlist("where") if w.strip())
        if len(where) > MAX_WHERE or any(len(w) > MAX_EXPRESSION for w in where):
            raise UsageError(f"at most {MAX_WHERE} filters of at most {MAX_EXPRESSION} characters each")
        sort = request.query_params.get("sort", "").strip() or None
        limit = query_int(request, "limit", 50, 1, MAX_LIMIT)
        listing = reader.listing(domain, where, sort, limit)
        metrics = listing.metric_names
        return page(
            request,
            "versions.html",
            domain=domain,
            listing=listing,
            where=where,
            sort=sort or "",
            limit=limit,
            metric_columns=metrics[:METRIC_COLUMNS],
            metrics=metrics,
        )

    def version(request: Request) -> Response:
        domain, n = request.path_params["domain"], request.path_params["version"]
        v = reader.version(domain, n)
        states = sorted(name for name, at in reader.states(domain).items() if at == n)
        record = v.metadata
        # Unset values (null) and the plugin metadata the params restate, only when asked for (?all=1).
        show_all = request.query_params.get("all") == "1"
        pairs = {f.name: list(v.record.values[f.name].items()) for f in FIELDS if f.show == "pairs"}
        plugin_rows = [row for key, value in sorted(v.plugin_metadata.items()) for row in flatten(value, key).items()]
        every = sum(map(len, pairs.values())) + len(plugin_rows)
        if not show_all:
            pairs = {name: [(k, x) for k, x in rows if not unset(x)] for name, rows in pairs.items()}
            plugin_rows = [(k, x) for k, x in plugin_rows if not (restated(k) or unset(x))]
        hidden = every - sum(map(len, pairs.values())) - len(plugin_rows)
        # Sections the core records but does not validate (any JSON): shown only when they are objects.
        git, runtime, dependencies = (record.get(k) if isinstance(record.get(k), dict) else {} for k in ("git", "runtime", "dependencies"))
        try:  # `modelstore env`, from the record already read
            requirements, requirements_problem = v.environment.requirements_txt(), None
        except ModelStoreError as exc:
            requirements, requirements_problem = None, str(exc)
        return page(
            request,
            "version.html",
            domain=domain,
            v=v,
            states=states,
            git=git,
            runtime=runtime,
            dependencies=dependencies,
            requirements=requirements,
            requirements_problem=requirements_problem,
            plugin_rows=plugin_rows,
            pairs=pairs,
            hidden=hidden,
            fields=FIELDS,
        )

    def compare(request: Request) -> Response:
        domain = request.path_params["domain"]
        raw = request.query_params.getlist("v")
        if any(not r.isdigit() for r in raw):
            raise UsageError("v=...: version numbers are whole numbers")
        chosen = tuple(dict.fromkeys(int(r) for r in raw))
        if not 2 <= len(chosen) <= MAX_COMPARE:
            raise UsageError(f"pick 2 to {MAX_COMPARE} versions to compare (v=3&v=5), not {len(chosen)}")
        directions = tuple(sorted((name, way) for way in ("higher", "lower") for name in dict.fromkeys(request.query_params.getlist(way))))
        table = reader.compare(domain, chosen, directions)
        show_all = request.query_params.get("all") == "1"
        sections = {
            section: [row for row in rows if show_all or section not in FOLDED or row["differs"]]
            for section, rows in table["sections"].items()
        }
        hidden = sum(len(rows) for rows in table["sections"].values()) - sum(len(rows) for rows in sections.values())
        return page(request, "compare.html", domain=domain, table=table, sections=sections, hidden=hidden, chosen=chosen, show_all=show_all)

    def metric_plot(request: Request) -> Response:
        domain = request.path_params["domain"]
        metric = request.query_params.get("metric", "")
        points, names = reader.series(domain, metric)
        if not metric and names:
            metric = names[0]
            points, names = reader.series(domain, metric)
        return page(request, "plot.html", domain=domain, metric=metric, metrics=names, chart=plot.chart(points), points=points)

    def download(request: Request, **which: Any) -> Response:
        domain, n = request.path_params["domain"], request.path_params["version"]
        entry, path = reader.verified_file(domain, n, **which)
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=entry.path.rsplit("/", 1)[-1],
            headers={"cache-control": "no-store", "x-sha256": entry.sha256},
        )

    def card(request: Request) -> Response:
        """The version's model card (``modelstore card``), as text: a README.md to read or save."""
        domain, n = request.path_params["domain"], request.path_params["version"]
        v = reader.version(domain, n)
        states = sorted(name for name, at in reader.states(domain).items() if at == n)
        return PlainTextResponse(model_card(v.record, states), headers={"cache-control": "no-store"})

    def file_by_index(request: Request) -> Response:
        return download(request, index=request.path_params["index"])

    def file_by_path(request: Request) -> Response:
        return download(request, path=request.query_params.get("path", ""))

    def store_error(request: Request, exc: Exception) -> Response:
        status = status_of(exc) if isinstance(exc, ModelStoreError) else 500
        return page(request, "error.html", status, status=status, message=" ".join(str(exc).split()))

    def http_error(request: Request, exc: HTTPException) -> Response:
        return page(request, "error.html", exc.status_code, status=exc.status_code, message=exc.detail)

    routes = [
        Route("/", domains, name="domains"),
        Route("/d/{domain}", versions, name="versions"),
        Route("/d/{domain}/compare", compare, name="compare"),
        Route("/d/{domain}/plot", metric_plot, name="plot"),
        Route("/d/{domain}/v/{version:int}", version, name="version"),
        Route("/d/{domain}/v/{version:int}/card", card, name="card"),
        Route("/d/{domain}/v/{version:int}/files/{index:int}", file_by_index, name="file"),
        Route("/d/{domain}/v/{version:int}/file", file_by_path, name="file-by-path"),
        Mount("/static", StaticFiles(packages=[("modelstore_web", "static")]), name="static"),
    ]
    hosts = allowed_hosts if allowed_hosts is not None else ["127.0.0.1", "localhost", "::1"]
    return Starlette(
        routes=routes,
        middleware=[Middleware(ReadOnly, allowed_hosts=hosts)],
        exception_handlers={ModelStoreError: store_error, HTTPException: http_error},
    )
