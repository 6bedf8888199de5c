"""The application factory. Nothing is built at import: each call makes its own engine,
connections and metrics, so tests build apps on throwaway databases and every worker process
has its own.

A request goes: Observability (request id, log line, metrics; outermost, so a 500 has them
too) -> Starlette's Router -> the path's Endpoint (api/http.py): its method's handler parses
the credentials, awaits the use case and presents its answer; whatever it raises is answered
from the one error table (api/errors.py)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from typing import IO, TYPE_CHECKING

from sqlalchemy import Engine
from starlette.routing import Router

from ..channels import ChannelRegistry, channels_for
from ..config import Settings, get_settings
from ..delivery.backlog import Backlog
from ..delivery.client import WebhookClient
from ..delivery.dispatcher import Dispatcher
from ..delivery.held import HeldStatuses
from ..delivery.sender import Sender
from ..domain.limits import limit_of
from ..domain.webhooks import RetryPolicy
from ..security.jwt import JwtVerifier
from ..security.limits import Limiter
from ..security.service import SecurityService
from ..security.tokens import TokenCipher, load_cipher
from ..storage.databases import open_database
from ..storage.db import Database
from ..storage.engine import make_engine
from ..storage.limits import RateWindows
from ..storage.uow import CHANNELS, SqlUnitOfWorkFactory
from .accounts import account_routes
from .admin import admin_routes
from .applications import application_routes
from .docs import docs_routes
from .health import health_routes
from .http import Services, not_found
from .inbox import inbox_routes
from .messages import message_routes
from .observability import AccessLog, Metrics, Observability
from .providers import provider_routes
from .redact import redact_routes
from .sandbox import sandbox_routes

# What the inbox's session key is derived for (security/tokens.py TokenCipher.derive).
INBOX_KEY = b"chatapp-accounts/inbox-session/v1"

if TYPE_CHECKING:
    from ..storage.listen import Listener


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    cipher: TokenCipher | None = None,
    log_stream: IO[str] | None = None,
    channels: ChannelRegistry | None = None,
) -> Observability:
    """The application. `channels`: where each message channel sends (default: as the
    settings' modes say: the sandbox, or a live provider)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    cipher = cipher or load_cipher(settings)
    metrics = Metrics()
    db = open_database(
        engine,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        on_connections=metrics.db_connections.set,
    )
    uow_factory = SqlUnitOfWorkFactory(db, cipher)
    metrics.db_statements.set_function(lambda: db.count.statements)
    defaults = (settings.limit_requests_per_second, settings.limit_messages_per_second)
    windows = RateWindows(uow_factory, *defaults)
    refused = metrics.rate_limited.labels
    limiter = (
        Limiter(windows, *defaults, on_refused=lambda api: refused(api).inc())
        if settings.limits
        else None
    )
    security = SecurityService(
        JwtVerifier(
            leeway=settings.jwt_leeway_seconds,
            cache_size=settings.jwt_cache_size,
            on_hit=metrics.jwt_cache_hit,
            on_signature_check=metrics.jwt_signature_checks.inc,
        ),
        limiter,
        lambda api: limit_of(None, api, *defaults),
    )
    services = Services(settings, uow_factory, security, _dropped_counter(metrics))
    backlog = Backlog(uow_factory, settings.max_due_backlog, _backlog_setter(metrics))
    channels = channels or channels_for(
        settings,
        _call_counter(metrics),
        lambda provider: metrics.provider_tokens.labels(provider).inc(),
    )
    dispatcher = sender = listener = held = None
    if settings.dispatcher:
        sender = Sender(
            uow_factory,
            channels,
            RetryPolicy(
                settings.provider_retry_first_seconds,
                settings.provider_retry_max_seconds,
                settings.provider_retry_horizon_seconds,
            ),
            timeout=settings.provider_timeout_seconds,
            lease=settings.send_lease_seconds,
            concurrency=settings.send_concurrency,
            on_try=lambda outcome: metrics.sends.labels(outcome).inc(),
            on_dropped=services.on_dropped,
        )
        dispatcher = Dispatcher(
            uow_factory,
            WebhookClient(
                timeout=settings.webhook_timeout_seconds,
                deny_private=settings.webhook_deny_private,
                concurrency=settings.webhook_concurrency,
                per_destination=settings.webhook_per_destination,
            ),
            RetryPolicy(
                settings.webhook_retry_first_seconds,
                settings.webhook_retry_max_interval_seconds,
                settings.webhook_retry_for_seconds,
            ),
            timeout=settings.webhook_timeout_seconds,
            concurrency=settings.webhook_concurrency,
            per_destination=settings.webhook_per_destination,
            retention_seconds=settings.message_retention_days * 86400,
            content_retention_seconds=settings.message_content_retention_days * 86400,
            on_attempt=lambda outcome: metrics.webhook_attempts.labels(outcome).inc(),
            on_stats=_stats_setter(metrics),
            requests=lambda: metrics.in_flight,
            on_dropped=services.on_dropped,
        )
        # Who new rows of a table wake: this process's commits, and others' through LISTEN.
        wake = {"send_jobs": sender.wake, "webhooks": dispatcher.wake}
        uow_factory.on_written.append(_waker(wake))
        listener = _listener(db, wake)
        if settings.live_channels:
            held = HeldStatuses(uow_factory, _held_counter(metrics))

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        # Everything made at start-up lives as long as the process: keep the cyclic garbage
        # collector from walking it again and again under load.
        gc.collect()
        gc.freeze()
        backlog.start()
        for worker in (limiter, sender, dispatcher, listener, held):
            if worker is not None:
                worker.start()
        yield
        for worker in (listener, held, sender, dispatcher, limiter):
            if worker is not None:
                await worker.stop()
        if sender is None:  # (the sender closes them when it stops)
            await channels.close()
        await backlog.stop()
        await uow_factory.close()

    router = Router(
        routes=[
            *account_routes(services),
            *application_routes(services),
            *message_routes(
                services,
                backlog,
                channels,
                lambda channel: metrics.messages_accepted.labels(channel).inc(),
                metrics.throttled.inc,
            ),
            *sandbox_routes(services),
            *admin_routes(services),
            *redact_routes(services),
            *provider_routes(
                services, lambda p, outcome, n: metrics.provider_callbacks.labels(p, outcome).inc(n)
            ),
            *health_routes(uow_factory, metrics),
            *(inbox_routes(services, cipher.derive(INBOX_KEY)) if settings.inbox else []),
            *docs_routes(),
        ],
        redirect_slashes=False,
        default=not_found,
        lifespan=lifespan,
    )
    log = AccessLog(settings.log_format, stream=log_stream) if settings.access_log else None
    return Observability(router, metrics, log)


def _waker(wake: dict[str, Callable[[], None]]) -> Callable[[set[str]], None]:
    def written(tables: set[str]) -> None:
        for table, woken in wake.items():
            if table in tables:
                woken()

    return written


def _listener(db: Database, wake: dict[str, Callable[[], None]]) -> Listener | None:
    """PostgreSQL: other processes' new rows wake this one at once (storage/listen.py), on the
    channels the batches NOTIFY for their tables."""
    conninfo = getattr(db, "conninfo", None)
    if conninfo is None:
        return None
    from ..storage.listen import Listener  # psycopg is imported by those who use it

    return Listener(conninfo, {CHANNELS[table]: woken for table, woken in wake.items()})


def _dropped_counter(metrics: Metrics) -> Callable[[str, int], None]:
    def dropped(kind: str, n: int) -> None:
        if n:
            metrics.work_dropped.labels(kind).inc(n)

    return dropped


def _call_counter(metrics: Metrics) -> Callable[[str, str, float], None]:
    def counted(provider: str, outcome: str, seconds: float) -> None:
        metrics.provider_calls.labels(provider, outcome).inc()
        metrics.provider_latency.labels(provider).observe(seconds)

    return counted


def _held_counter(metrics: Metrics) -> Callable[[int, int, int], None]:
    def counted(applied: int, unchanged: int, dropped: int) -> None:
        metrics.held_statuses.labels("applied").inc(applied)
        metrics.held_statuses.labels("unchanged").inc(unchanged)
        metrics.held_statuses.labels("dropped").inc(dropped)

    return counted


def _backlog_setter(metrics: Metrics) -> Callable[[str, int, float], None]:
    def set_backlog(kind: str, due: int, oldest_age: float) -> None:
        metrics.backlog.labels(kind).set(due)
        metrics.backlog_oldest_age.labels(kind).set(oldest_age)

    return set_backlog


def _stats_setter(metrics: Metrics) -> Callable[[int, float], None]:
    def set_stats(pending: int, oldest_age: float) -> None:
        metrics.webhooks_pending.set(pending)
        metrics.webhook_oldest_pending_age.set(oldest_age)

    return set_stats
