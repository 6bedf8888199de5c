"""Interactive documentation of both APIs at /docs: Swagger UI, from the files the
`swagger-ui-bundle` package installs, over the specs this server serves. Nothing is fetched
from another host: the page's Content-Security-Policy allows this server alone (Swagger UI's
online validator is turned off), so a browser would refuse anything else."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from .accounts import PREFIX as ACCOUNTS
from .admin import PREFIX as ADMIN
from .applications import PREFIX as APPLICATIONS
from .errors import error_response
from .http import route
from .messages import PREFIX as MESSAGES
from .sandbox import PREFIX as SANDBOX

DOCS = "/docs"
ASSETS = DOCS + "/assets"
# The specs the page offers, in its "Select a definition" list; the first is shown first.
SPECS = (
    ("External Accounts API", ACCOUNTS + "/openapi.json"),
    ("Application API v2", APPLICATIONS + "/openapi.json"),
    ("Messages API v1", MESSAGES + "/openapi.json"),
    ("Sandbox API", SANDBOX + "/openapi.json"),
    ("Admin API", ADMIN + "/openapi.json"),
)
_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>chatapp-accounts: API documentation</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="{ASSETS}/swagger-ui-standalone-preset.js"></script>
  <script src="{DOCS}/init.js"></script>
</body>
</html>
""".encode()

# `?urls.primaryName=<name>` opens the page on that API (queryConfigEnabled).
_INIT = f"""window.ui = SwaggerUIBundle({{
  urls: {json.dumps([{"name": name, "url": url} for name, url in SPECS])},
  dom_id: "#swagger-ui",
  deepLinking: true,
  queryConfigEnabled: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"
}});
""".encode()


def docs_routes() -> list[BaseRoute]:
    headers = {"content-security-policy": _POLICY, "cache-control": "no-cache"}

    async def page(request: Request) -> Response:
        return Response(_PAGE, media_type="text/html; charset=utf-8", headers=headers)

    async def init(request: Request) -> Response:
        return Response(_INIT, media_type="text/javascript; charset=utf-8", headers=headers)

    files = StaticFiles(directory=swagger_ui_path)

    async def assets(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route_template"] = ASSETS + "/{file}"  # one label in the metrics and the log
        try:
            response = await files.get_response(files.get_path(scope), scope)
        except HTTPException as exc:  # 404, 405: in the API's error shape
            response = error_response(Request(scope, receive), exc)
        await response(scope, receive, send)

    return [
        route(DOCS, GET=page),
        route(DOCS + "/", GET=page),
        route(DOCS + "/init.js", GET=init),
        Mount(ASSETS, app=assets),
    ]
