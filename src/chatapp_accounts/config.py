"""Settings, read from the environment once, through get_settings().

Nothing here runs at import time: the app factory and the CLI ask for settings when they
need them, and tests build their own Settings without touching the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .domain.limits import LIMIT_MAX

DEFAULT_DATABASE_URL = "sqlite:///chatapp-accounts.sqlite3"
META_GRAPH_URL = "https://graph.facebook.com/v21.0"  # the Graph API version is in the URL
RBM_URL = "https://rcsbusinessmessaging.googleapis.com"
RBM_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret


class ConfigError(Exception):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # base64url-encoded 32-byte AES keys; the first encrypts, all decrypt.
    encryption_keys: tuple[str, ...] = ()
    # Absolute base for HAL `_links`, e.g. "https://accounts.example.com". Empty: from the request.
    public_base_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 1024 * 1024
    # PostgreSQL: connections per process at most (a pool), and how long a unit of work waits
    # for one before the answer is 503.
    db_pool_size: int = 32
    db_pool_timeout: float = 5.0
    log_level: str = "info"
    # Bearer JWTs: tolerated clock skew, and how many verified tokens each process remembers.
    jwt_leeway_seconds: int = 30
    jwt_cache_size: int = 10_000
    # One line per request on stderr, "text" (key=value) or "json"; off with access_log=False.
    access_log: bool = True
    log_format: str = "text"
    # Addresses whose X-Forwarded-For / X-Forwarded-Proto are believed (the reverse proxy's).
    forwarded_allow_ips: str = "127.0.0.1"
    # HTTPS: both set, or neither.
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    # Webhooks (docs/messages.md): how long an attempt may take, the retry schedule (first
    # retry after, doubling up to, for at most), refusal of private addresses.
    webhook_timeout_seconds: float = 10.0
    webhook_retry_first_seconds: float = 5.0
    webhook_retry_max_interval_seconds: float = 900.0
    webhook_retry_for_seconds: float = 86400.0
    webhook_deny_private: bool = False
    webhook_concurrency: int = 512
    webhook_per_destination: int = 256
    # Retention (docs/messages.md): days a message's content (text, media, webhook bodies,
    # the inbox's stored requests and answers) is kept, and days its metadata (uuids, statuses,
    # times, errors) is kept for the statistics; content <= metadata.
    message_content_retention_days: float = 7.0
    message_retention_days: float = 90.0
    # Off: this process neither sends accepted messages nor their webhooks (the send jobs and
    # the outbox still fill; another process sends them).
    dispatcher: bool = True
    # The web inbox at /inbox (docs/inbox.md); off: 404.
    inbox: bool = True
    # The hand-over (docs/messages.md): how long a channel may take to take a message, the
    # retry schedule of a channel that did not answer (first retry after, longest wait, for at
    # most, from the first try), how long a claimed job stays with its sender, tries at once.
    provider_timeout_seconds: float = 10.0
    provider_retry_first_seconds: float = 1.0
    provider_retry_max_seconds: float = 60.0
    provider_retry_horizon_seconds: float = 3600.0
    send_lease_seconds: float = 30.0
    send_concurrency: int = 256
    # Back-pressure: past this many send jobs and webhooks due now (all processes), new sends
    # are answered 429 until the backlog is back under it.
    max_due_backlog: int = 5000
    # Per-tenant limits (docs/limits.md): requests per second on each API, messages per second
    # on /v1/messages; a tenant's own override (admin API, `tenants limits`) wins. Off: nothing
    # is counted (the back-pressure 429 still says these limits).
    limits: bool = True
    limit_requests_per_second: int = 100
    limit_messages_per_second: int = 30
    # Live channels (docs/providers.md): each channel "sandbox" (nothing leaves the machine) or
    # "live"; Meta's Graph API for Messenger and WhatsApp, Google's RBM for RCS; the rate each
    # account may send at (messages or calls per second). Secrets never in a repr.
    messenger_mode: str = "sandbox"
    whatsapp_mode: str = "sandbox"
    rcs_mode: str = "sandbox"
    meta_graph_url: str = META_GRAPH_URL
    meta_app_secret: str = field(default="", repr=False)
    meta_verify_token: str = field(default="", repr=False)
    rbm_url: str = RBM_URL
    rbm_token_url: str = RBM_TOKEN_URL
    rbm_service_account_file: str = ""
    rbm_client_token: str = field(default="", repr=False)
    whatsapp_rate: float = 80.0
    messenger_rate: float = 300.0
    rcs_rate: float = 300.0

    @property
    def live_channels(self) -> frozenset[str]:
        modes = {"messenger": self.messenger_mode, "whatsapp": self.whatsapp_mode,
                 "rcs": self.rcs_mode}  # fmt: skip
        return frozenset(channel for channel, mode in modes.items() if mode == "live")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of an SQLite URL (None for PostgreSQL or in-memory SQLite)."""
        if not self.is_sqlite:
            return None
        _, _, rest = self.database_url.partition(":///")
        if not rest or rest == ":memory:":
            return None
        return Path(rest.split("?", 1)[0])

    @property
    def key_file(self) -> Path | None:
        """Where the embedded default keeps its generated encryption key."""
        path = self.sqlite_path
        return path.with_name(path.name + ".key") if path else None

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number of at least {minimum}, got {raw!r}")
    return value


PORT_MAX = 65535


def check_port(port: int, name: str = "CHATAPP_PORT") -> int:
    """A TCP port to listen on: 1 to 65535 (0 would listen on a port nobody was told)."""
    if not 1 <= port <= PORT_MAX:
        raise ConfigError(f"{name} must be a port from 1 to {PORT_MAX}, got {port}")
    return port


def _is_http_base(raw: str) -> bool:
    """An absolute http(s) URL with a host and no query or fragment (not even an empty one)."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "?" not in raw
        and "#" not in raw
    )


def _public_base_url(env: Mapping[str, str]) -> str:
    """An absolute http(s) URL with a host and no query or fragment, or empty (links are then
    built from each request's own origin)."""
    raw = (env.get("CHATAPP_PUBLIC_BASE_URL") or "").strip()
    if not raw:
        return ""
    if not _is_http_base(raw):
        raise ConfigError(
            "CHATAPP_PUBLIC_BASE_URL must be an absolute http or https URL without a query or "
            f"fragment, such as https://accounts.example.com, got {raw!r}"
        )
    return raw.rstrip("/")


def _encryption_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("CHATAPP_ENCRYPTION_KEYS") or ""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if raw.strip() and not keys:
        raise ConfigError(
            "CHATAPP_ENCRYPTION_KEYS lists no key (make one with: chatapp-accounts secrets new-key)"
        )
    return keys


# "trace" is left out on purpose: uvicorn's trace level logs raw requests, headers and bodies.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("CHATAPP_LOG_LEVEL") or "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"CHATAPP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r} "
            "(trace is refused: it would log request headers and bodies)"
        )
    return level


def _send_lease(env: Mapping[str, str]) -> float:
    lease = _float(env, "CHATAPP_SEND_LEASE_SECONDS", 30.0, 0.1)
    timeout = _float(env, "CHATAPP_PROVIDER_TIMEOUT_SECONDS", 10.0, 0.01)
    if lease < timeout + 1:  # (a try may wait a moment for its account's turn first)
        raise ConfigError(
            "CHATAPP_SEND_LEASE_SECONDS must be at least a second longer than "
            f"CHATAPP_PROVIDER_TIMEOUT_SECONDS ({lease} < {timeout} + 1): a job would be taken "
            "from a sender still trying it"
        )
    return lease


MODES = ("sandbox", "live")


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    """A provider's base URL: any absolute http or https URL (the tests' fakes are http)."""
    raw = (env.get(name) or default).strip()
    if not _is_http_base(raw):
        raise ConfigError(
            f"{name} must be an absolute http or https URL without a query or fragment, got {raw!r}"
        )
    return raw.rstrip("/")


def _required(env: Mapping[str, str], name: str, why: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise ConfigError(f"{name} must be set: {why}")
    return value


def service_account(path: str) -> dict[str, str]:
    """Google's service-account JSON key: its `client_email` and `private_key` (PEM) are what
    the RBM channel signs its token requests with."""
    name = "CHATAPP_RBM_SERVICE_ACCOUNT_FILE"
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path!r} ({exc.strerror})") from None
    try:
        info = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{name}: {path!r} is not JSON (a service-account key file)") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{name}: {path!r} is not a service-account key file")
    missing = [
        key for key in ("client_email", "private_key")
        if not isinstance(info.get(key), str) or not info[key]
    ]  # fmt: skip
    if missing:
        raise ConfigError(f"{name}: {path!r} has no {' or '.join(missing)}")
    try:
        key = load_pem_private_key(info["private_key"].encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{name}: {path!r}: private_key is not a PEM RSA private key")
    return {key: value for key, value in info.items() if isinstance(value, str)}


def _providers(env: Mapping[str, str]) -> dict[str, object]:
    """The live channels' settings; a live channel refuses to start without what it needs."""
    if _choice(env, "CHATAPP_VIBER_SERVICE_MODE", MODES) == "live":
        raise ConfigError(
            "CHATAPP_VIBER_SERVICE_MODE=live is not available: Vonage's viber_service sends to "
            "phone numbers through Viber Business Messages, a partner-only API with no public "
            "wire format; viber_service stays in the sandbox"
        )
    modes = {
        channel: _choice(env, f"CHATAPP_{channel.upper()}_MODE", MODES)
        for channel in ("messenger", "whatsapp", "rcs")
    }
    values: dict[str, object] = {f"{channel}_mode": mode for channel, mode in modes.items()}
    values["meta_graph_url"] = _url(env, "CHATAPP_META_GRAPH_URL", META_GRAPH_URL)
    values["rbm_url"] = _url(env, "CHATAPP_RBM_URL", RBM_URL)
    values["rbm_token_url"] = _url(env, "CHATAPP_RBM_TOKEN_URL", RBM_TOKEN_URL)
    meta = [c for c in ("messenger", "whatsapp") if modes[c] == "live"]
    if meta:
        why = f"{' and '.join(meta)} live mode needs it to verify Meta's callbacks"
        values["meta_app_secret"] = _required(env, "CHATAPP_META_APP_SECRET", why)
        values["meta_verify_token"] = _required(env, "CHATAPP_META_VERIFY_TOKEN", why)
    if modes["rcs"] == "live":
        why = "rcs live mode needs it"
        path = _required(env, "CHATAPP_RBM_SERVICE_ACCOUNT_FILE", why + " to send")
        service_account(path)
        values["rbm_service_account_file"] = path
        values["rbm_client_token"] = _required(
            env, "CHATAPP_RBM_CLIENT_TOKEN", why + " to verify RBM's callbacks"
        )
    values["whatsapp_rate"] = _float(env, "CHATAPP_WHATSAPP_RATE", 80.0, 0.001)
    values["messenger_rate"] = _float(env, "CHATAPP_MESSENGER_RATE", 300.0, 0.001)
    values["rcs_rate"] = _float(env, "CHATAPP_RCS_RATE", 300.0, 0.001)
    return values


def _database_url(env: Mapping[str, str]) -> str:
    """The database URL; an SQLite file's folder must exist (nothing makes folders behind the
    operator's back), and `sqlite://name` is the two-slash slip it looks like."""
    url = env.get("CHATAPP_DATABASE_URL") or DEFAULT_DATABASE_URL
    if url.startswith("sqlite://") and not url.startswith("sqlite:///") and url != "sqlite://":
        rest = url.removeprefix("sqlite://")
        raise ConfigError(
            f"CHATAPP_DATABASE_URL {url!r}: an SQLite file takes three slashes, "
            f"sqlite:///{rest} (four for an absolute path)"
        )
    path = Settings(database_url=url).sqlite_path
    if path is not None and not path.parent.is_dir():
        raise ConfigError(
            f"CHATAPP_DATABASE_URL: the folder {str(path.parent)!r} does not exist; create it "
            "first, or choose another path"
        )
    return url


def _retention(env: Mapping[str, str]) -> dict[str, float]:
    """The two retention periods: content is removed no later than the message itself."""
    content = _float(env, "CHATAPP_MESSAGE_CONTENT_RETENTION_DAYS", 7.0, 0.0001)
    metadata = _float(env, "CHATAPP_MESSAGE_RETENTION_DAYS", 90.0, 0.0001)
    if content > metadata:
        raise ConfigError(
            f"CHATAPP_MESSAGE_CONTENT_RETENTION_DAYS ({content:g}) is longer than "
            f"CHATAPP_MESSAGE_RETENTION_DAYS ({metadata:g}): a message's content cannot be kept "
            "after the message is deleted; make it shorter, or the retention longer"
        )
    return {"message_content_retention_days": content, "message_retention_days": metadata}


def settings_from_env(env: Mapping[str, str]) -> Settings:
    return Settings(
        database_url=_database_url(env),
        encryption_keys=_encryption_keys(env),
        public_base_url=_public_base_url(env),
        host=env.get("CHATAPP_HOST") or "127.0.0.1",
        port=check_port(_int(env, "CHATAPP_PORT", 8000)),
        workers=_int(env, "CHATAPP_WORKERS", 1, 1),
        max_body_bytes=_int(env, "CHATAPP_MAX_BODY_BYTES", 1024 * 1024, 1),
        db_pool_size=_int(env, "CHATAPP_DB_POOL_SIZE", 32, 1, 256),
        db_pool_timeout=_int(env, "CHATAPP_DB_POOL_TIMEOUT", 5, 1, 300),
        log_level=_log_level(env),
        jwt_leeway_seconds=_int(env, "CHATAPP_JWT_LEEWAY_SECONDS", 30, 0),
        access_log=_bool(env, "CHATAPP_ACCESS_LOG", True),
        forwarded_allow_ips=env.get("CHATAPP_FORWARDED_ALLOW_IPS") or "127.0.0.1",
        log_format=_choice(env, "CHATAPP_LOG_FORMAT", ("text", "json")),
        jwt_cache_size=_int(env, "CHATAPP_JWT_CACHE_SIZE", 10_000, 1),
        ssl_certfile=env.get("CHATAPP_SSL_CERTFILE", ""),
        ssl_keyfile=env.get("CHATAPP_SSL_KEYFILE", ""),
        webhook_timeout_seconds=_float(env, "CHATAPP_WEBHOOK_TIMEOUT_SECONDS", 10.0, 0.1),
        webhook_retry_first_seconds=_float(env, "CHATAPP_WEBHOOK_RETRY_FIRST_SECONDS", 5.0, 0.01),
        webhook_retry_max_interval_seconds=_float(
            env, "CHATAPP_WEBHOOK_RETRY_MAX_INTERVAL_SECONDS", 900.0, 0.01
        ),
        webhook_retry_for_seconds=_float(env, "CHATAPP_WEBHOOK_RETRY_FOR_SECONDS", 86400.0, 0),
        webhook_deny_private=_bool(env, "CHATAPP_WEBHOOK_DENY_PRIVATE", False),
        webhook_concurrency=_int(env, "CHATAPP_WEBHOOK_CONCURRENCY", 512, 1, 4096),
        webhook_per_destination=_int(env, "CHATAPP_WEBHOOK_PER_DESTINATION", 256, 1, 4096),
        **_retention(env),  # type: ignore[arg-type]
        dispatcher=_bool(env, "CHATAPP_DISPATCHER", True),
        inbox=_bool(env, "CHATAPP_INBOX", True),
        provider_timeout_seconds=_float(env, "CHATAPP_PROVIDER_TIMEOUT_SECONDS", 10.0, 0.01),
        provider_retry_first_seconds=_float(
            env, "CHATAPP_PROVIDER_RETRY_FIRST_SECONDS", 1.0, 0.001
        ),
        provider_retry_max_seconds=_float(env, "CHATAPP_PROVIDER_RETRY_MAX_SECONDS", 60.0, 0.001),
        provider_retry_horizon_seconds=_float(
            env, "CHATAPP_PROVIDER_RETRY_HORIZON_SECONDS", 3600.0, 0
        ),
        send_lease_seconds=_send_lease(env),
        send_concurrency=_int(env, "CHATAPP_SEND_CONCURRENCY", 256, 1, 4096),
        max_due_backlog=_int(env, "CHATAPP_MAX_DUE_BACKLOG", 5000, 1),
        limits=_bool(env, "CHATAPP_LIMITS", True),
        limit_requests_per_second=_int(env, "CHATAPP_LIMIT_REQUESTS_PER_SECOND", 100, 1, LIMIT_MAX),
        limit_messages_per_second=_int(env, "CHATAPP_LIMIT_MESSAGES_PER_SECOND", 30, 1, LIMIT_MAX),
        **_providers(env),  # type: ignore[arg-type]
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env(os.environ)
