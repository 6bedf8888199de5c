"""The application factory. Nothing is built at import: each call makes its own engine,
connections and metrics, so tests build apps on throwaway databases and every worker process
has its own."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings, get_settings
from ..domain.errors import DomainError
from ..domain.tenants import signing_key
from ..security.jwt import JwtVerifier
from ..security.tokens import TokenCipher, load_cipher
from ..storage.db import Database
from ..storage.engine import make_engine
from ..storage.pipeline import PipelinedReads
from ..storage.reads import InlineAccountReads, PipelinedAccountReads
from ..storage.uow import SqlUnitOfWorkFactory
from .accounts import account_routes
from .applications import application_routes
from .auth import BasicAuth, BasicOrBearerAuth
from .docs import docs_routes
from .errors import on_domain_error, on_http_error, on_unexpected
from .health import health_routes
from .hot import HotReads
from .http import Services
from .observability import AccessLog, Metrics, Observability


class ChatappAccounts(Starlette):
    """Starlette, with the observability layer outside even its last-resort error handler,
    so every answer (a 500 included) carries a request id, a log line and metrics."""

    def build_middleware_stack(self) -> ASGIApp:
        inner = HotReads(super().build_middleware_stack(), self.state.services)
        metrics: Metrics = self.state.metrics
        log: AccessLog | None = self.state.access_log
        return Observability(inner, metrics, log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            # Already answered (500) and logged by the error table's handler; do not let the
            # server log it a second time, with a traceback.
            if scope["type"] != "http":
                raise


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    cipher: TokenCipher | None = None,
) -> ChatappAccounts:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    cipher = cipher or load_cipher(settings)
    metrics = Metrics()
    db = Database(engine, on_connections=metrics.db_connections.set)
    uow_factory = SqlUnitOfWorkFactory(db, cipher)
    verifier = JwtVerifier(
        lambda application_id: signing_key(uow_factory, application_id),
        leeway=settings.jwt_leeway_seconds,
        cache_size=settings.jwt_cache_size,
        on_hit=metrics.jwt_cache_hit,
        on_signature_check=metrics.jwt_signature_checks.inc,
    )
    reads: InlineAccountReads | PipelinedAccountReads = InlineAccountReads(uow_factory)
    if db.dialect == "postgresql":
        reads = PipelinedAccountReads(PipelinedReads(db.new_connection), uow_factory.sql, cipher)
    services = Services(
        settings,
        uow_factory,
        authenticate=BasicOrBearerAuth(uow_factory, verifier),
        authenticate_basic=BasicAuth(uow_factory),
        reads=reads,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Everything made at start-up lives as long as the process: keep the cyclic garbage
        # collector from walking it again and again under load.
        gc.collect()
        gc.freeze()
        yield
        if isinstance(reads, PipelinedAccountReads):
            reads.close()
        db.close()

    exception_handlers: dict[Any, Any] = {
        DomainError: on_domain_error,
        HTTPException: on_http_error,
        Exception: on_unexpected,
    }
    app = ChatappAccounts(
        routes=[
            *account_routes(services),
            *application_routes(services),
            *health_routes(db, metrics),
            *docs_routes(),
        ],
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.services = services
    app.state.metrics = metrics
    app.state.access_log = AccessLog(settings.log_format) if settings.access_log else None
    return app
