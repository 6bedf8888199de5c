"""/healthz (the process is alive), /readyz (the database answers and its schema is at the
latest migration) and /metrics (Prometheus). None of them needs credentials."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..storage.migrate import head_revision
from ..storage.uow import SqlUnitOfWorkFactory
from .http import json_response, route
from .observability import Metrics


def health_routes(uow_factory: SqlUnitOfWorkFactory, metrics: Metrics) -> list[Route]:
    head = head_revision()

    async def healthz(request: Request) -> Response:
        return json_response({"status": "alive"})

    async def readyz(request: Request) -> Response:
        try:
            revision = await uow_factory.schema_revision()
        except Exception as exc:  # noqa: BLE001 - any failure to answer is "not ready"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return json_response(
                {"status": "unavailable", "database": "unreachable", "reason": reason}, 503
            )
        if revision != head:
            return json_response(
                {
                    "status": "unavailable",
                    "database": "ok",
                    "reason": f"schema is at {revision}, the latest migration is {head}",
                },
                503,
            )
        return json_response({"status": "ready", "database": "ok", "schema": revision})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        route("/healthz", GET=healthz),
        route("/readyz", GET=readyz),
        route("/metrics", GET=metrics_endpoint),
    ]
