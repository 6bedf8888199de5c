"""The application factory. Nothing is built at import: each call makes its own engine, so
tests build apps on throwaway databases and every worker process has its own pool."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..config import Settings, get_settings
from ..domain.errors import DomainError
from ..domain.tenants import signing_key
from ..security.jwt import JwtVerifier
from ..security.tokens import TokenCipher, load_cipher
from ..storage.db import Database
from ..storage.engine import make_engine
from ..storage.uow import SqlUnitOfWorkFactory
from .accounts import account_routes
from .applications import application_routes
from .auth import BasicAuth, BasicOrBearerAuth
from .errors import on_domain_error, on_http_error, on_unexpected
from .hot import HotReads
from .http import Services
from .request_id import RequestIdMiddleware


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    cipher: TokenCipher | None = None,
) -> Starlette:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    cipher = cipher or load_cipher(settings)
    db = Database(engine)
    uow_factory = SqlUnitOfWorkFactory(db, cipher)
    verifier = JwtVerifier(
        lambda application_id: signing_key(uow_factory, application_id),
        leeway=settings.jwt_leeway_seconds,
        cache_size=settings.jwt_cache_size,
    )
    services = Services(
        settings,
        uow_factory,
        authenticate=BasicOrBearerAuth(uow_factory, verifier),
        authenticate_basic=BasicAuth(uow_factory),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Everything made at start-up lives as long as the process: keep the cyclic garbage
        # collector from walking it again and again under load.
        gc.collect()
        gc.freeze()
        yield
        db.close()

    app = Starlette(
        routes=[*account_routes(services), *application_routes(services)],
        middleware=[Middleware(RequestIdMiddleware), Middleware(HotReads, services=services)],
        exception_handlers={
            DomainError: on_domain_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.services = services
    app.state.jwt_verifier = verifier
    return app
