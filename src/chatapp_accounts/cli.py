"""The `chatapp-accounts` command: serve, migrate, and operate tenants and accounts.

It reads the same settings as the server (CHATAPP_* environment variables). Every command
first brings the schema to the latest migration. Errors are one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .api import message_bodies
from .config import ConfigError, Settings, check_port, get_settings
from .domain import accounts as account_cases
from .domain import admin as admin_cases
from .domain import messages as message_cases
from .domain import retention as retention_cases
from .domain import rules
from .domain import sandbox as sandbox_cases
from .domain import tenants as tenant_cases
from .domain import webhooks as webhook_cases
from .domain.errors import DomainError, InvalidInput, MessageRejected
from .domain.models import (
    CHANNEL_PROVIDERS,
    CLI,
    PROVIDERS,
    Faults,
    NewTenant,
    Provider,
    TenantLimits,
)
from .domain.webhooks import STATES
from .presenters import limits_json, message_json, webhook_detail_json, webhook_json
from .security.service import SecurityService
from .security.tokens import TokenCipher, TokenDecryptError, load_cipher, new_key
from .storage.databases import open_database
from .storage.engine import make_engine
from .storage.migrate import upgrade
from .storage.rotation import rotate_tokens
from .storage.uow import SqlUnitOfWorkFactory

T = TypeVar("T")


class CliError(Exception):
    """Printed as one line; exit status 1."""


def _embedded_path(settings: Settings) -> Path | None:
    path = settings.sqlite_path
    return path.resolve() if path is not None else None


def _run(
    settings: Settings,
    use_case: Callable[[SqlUnitOfWorkFactory], Awaitable[T]],
    *,
    create: bool = False,
) -> T:
    """`use_case(factory)` on the database at the latest migration, for one command."""
    engine, cipher = migrated(settings, create=create)
    factory = SqlUnitOfWorkFactory(
        open_database(engine, pool_size=1, pool_timeout=settings.db_pool_timeout), cipher
    )

    async def run() -> T:
        try:
            return await use_case(factory)
        finally:
            await factory.close()

    return asyncio.run(run())


def _audited(
    settings: Settings,
    action: str,
    tenant: str | None,
    use_case: Callable[[SqlUnitOfWorkFactory], Awaitable[T]],
    tenant_of: Callable[[T], str | None] | None = None,
    detail_of: Callable[[T], str] | None = None,
) -> T:
    """`_run`, with a line in the audit log (actor `cli`, docs/operations.md): what changed,
    and whether it did."""
    return _run(
        settings,
        lambda uow: admin_cases.audited(
            uow, CLI, action, tenant, lambda: use_case(uow), tenant_of, detail_of
        ),
    )


def migrated(settings: Settings, *, create: bool = False) -> tuple[Engine, TokenCipher]:
    """The database at the latest migration, and the cipher of its tokens. Only `serve`
    creates an embedded database that is not there: any other command run in the wrong folder
    would quietly make an empty one, whose credentials no running server knows."""
    engine = make_engine(settings.database_url, pool_size=1)
    path = _embedded_path(settings)
    if not create and path is not None and not path.exists():
        engine.dispose()
        raise CliError(
            f"no database at {path}: run this where `chatapp-accounts serve` runs, or set "
            "CHATAPP_DATABASE_URL to its database (`chatapp-accounts db upgrade` makes a new one)"
        )
    cipher = load_cipher(settings)  # a bad key is said before the database is touched
    upgrade(engine)
    return engine, cipher


def _print_json(value: Any) -> None:
    print(json.dumps(value))


def _tls_files(args: argparse.Namespace, settings: Settings) -> tuple[str, str] | None:
    certfile = args.ssl_certfile or settings.ssl_certfile
    keyfile = args.ssl_keyfile or settings.ssl_keyfile
    if not certfile and not keyfile:
        return None
    if not certfile or not keyfile:
        raise CliError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    for path in (certfile, keyfile):
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise CliError(f"cannot read {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise CliError(
            f"{certfile} / {keyfile} are not a certificate and its key: {exc.reason}"
        ) from None
    return certfile, keyfile


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .server import check_can_listen, uvicorn_options

    host = args.host or settings.host
    port = check_port(args.port, "--port") if args.port is not None else settings.port
    workers = args.workers or settings.workers
    tls = _tls_files(args, settings)
    check_can_listen(host, port)

    async def first_tenant(uow: SqlUnitOfWorkFactory) -> NewTenant | None:
        if settings.is_sqlite and await tenant_cases.count_tenants(uow) == 0:
            return await tenant_cases.create_tenant(uow, SecurityService())
        return None

    path = _embedded_path(settings)
    tenant = _run(settings, first_tenant, create=True)
    if path is not None:
        print(f"Embedded database: {path}")
    if tenant is not None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        scheme, trust = ("https", f"--cacert {shlex.quote(tls[0])} ") if tls else ("http", "")
        print("Created a first tenant on this empty database. Its secrets are shown only once:")
        print(f"  api_key:          {tenant.api_key}")
        print(f"  api_secret:       {tenant.api_secret}")
        print(f"  signature_secret: {tenant.signature_secret}   (signs its webhooks)")
        print("Try it:")
        print(
            f"  curl {trust}-u {tenant.api_key}:{tenant.api_secret} "
            f"{scheme}://{shown}:{port}/beta/chatapp-accounts"
        )
        sys.stdout.flush()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics to files here; /metrics on any worker sums them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="chatapp-metrics-")
    uvicorn.run(
        "chatapp_accounts.api.app:create_app",
        factory=True,
        **uvicorn_options(
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        ),
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print("database is at the latest migration")
    return 0


def cmd_tenants_create(args: argparse.Namespace, settings: Settings) -> int:
    tenant = _audited(
        settings,
        "tenants.create",
        None,
        lambda uow: tenant_cases.create_tenant(uow, SecurityService()),
        lambda t: t.api_key,
    )
    if args.json:
        _print_json(
            {
                "api_key": tenant.api_key,
                "api_secret": tenant.api_secret,
                "signature_secret": tenant.signature_secret,
            }
        )
    else:
        print(f"api_key:          {tenant.api_key}")
        print(f"api_secret:       {tenant.api_secret}   (shown only once)")
        print(f"signature_secret: {tenant.signature_secret}   (shown only once; signs webhooks)")
    return 0


def cmd_tenants_signature_secret(args: argparse.Namespace, settings: Settings) -> int:
    secret = _audited(
        settings,
        "tenants.signature-secret",
        args.api_key,
        lambda uow: tenant_cases.replace_signature_secret(uow, SecurityService(), args.api_key),
    )
    if args.json:
        _print_json({"api_key": args.api_key, "signature_secret": secret})
    else:
        print(f"signature_secret: {secret}   (shown only once; the old one no longer signs)")
    return 0


def _limit(raw: str) -> int | str:
    """A limit of `tenants limits`: a number, or `default`."""
    if raw == "default":
        return raw
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number, or 'default'") from None


def _replaced(given: int | str | None, current: int | None) -> int | None:
    """A limit after `tenants limits`: the one given (`default`: None), else the current."""
    if given is None:
        return current
    return None if given == "default" else int(given)


def cmd_tenants_limits(args: argparse.Namespace, settings: Settings) -> int:
    key = args.api_key
    if args.requests is None and args.messages is None:
        limits = _run(settings, lambda uow: tenant_cases.show_limits(uow, key))
    else:
        current = _run(settings, lambda uow: tenant_cases.show_limits(uow, key))
        new = TenantLimits(
            _replaced(args.requests, current.requests_per_second),
            _replaced(args.messages, current.messages_per_second),
        )
        limits = _audited(settings, "tenants.limits", key,
                          lambda uow: tenant_cases.set_limits(uow, key, new))  # fmt: skip
    shown = limits_json(key, limits, settings.limit_requests_per_second,
                        settings.limit_messages_per_second)  # fmt: skip
    if args.json:
        _print_json(shown)
    else:
        effective = shown["effective"]
        for name in ("requests_per_second", "messages_per_second"):
            own = "its own" if shown[name] is not None else "the default"
            print(f"{name}: {effective[name]} ({own})")
    return 0


def cmd_tenants_list(args: argparse.Namespace, settings: Settings) -> int:
    records = _run(settings, tenant_cases.list_tenants)
    if args.json:
        _print_json(
            [
                {"api_key": r.api_key, "revoked": r.revoked, "created_at": r.created_at}
                for r in records
            ]
        )
    else:
        for r in records:
            print(f"{r.api_key}  {'revoked' if r.revoked else 'active '}  {r.created_at}")
    return 0


def cmd_tenants_revoke(args: argparse.Namespace, settings: Settings) -> int:
    _audited(settings, "tenants.suspend", args.api_key,
             lambda uow: tenant_cases.revoke_tenant(uow, args.api_key))  # fmt: skip
    print(f"revoked {args.api_key} (`tenants resume` undoes it)")
    return 0


def cmd_tenants_resume(args: argparse.Namespace, settings: Settings) -> int:
    _audited(settings, "tenants.resume", args.api_key,
             lambda uow: tenant_cases.resume_tenant(uow, args.api_key))  # fmt: skip
    print(f"resumed {args.api_key}: its credentials work again")
    return 0


def cmd_tenants_delete(args: argparse.Namespace, settings: Settings) -> int:
    if not args.yes:
        raise CliError("deleting a tenant deletes all its data: add --yes to mean it")
    dropped = _audited(settings, "tenants.delete", args.api_key,
                       lambda uow: tenant_cases.delete_tenant(uow, args.api_key))  # fmt: skip
    print(f"deleted {args.api_key} and all its data (dropped {dropped.send_jobs} queued send "
          f"jobs and {dropped.webhooks} pending webhooks)")  # fmt: skip
    return 0


def cmd_admin_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    scopes = [s for given in args.scope for s in given.split(",") if s]
    new = _audited(
        settings,
        "admin-tokens.create",
        None,
        lambda uow: admin_cases.create_admin_token(uow, SecurityService(), args.name, scopes),
    )
    if args.json:
        _print_json({"name": new.name, "token": new.token, "scopes": list(new.scopes)})
    else:
        print(f"name:   {new.name}")
        print(f"scopes: {' '.join(new.scopes)}")
        print(f"token:  {new.token}   (shown only once)")
    return 0


def cmd_admin_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    records = _run(settings, admin_cases.list_admin_tokens)
    if args.json:
        _print_json(
            [
                {"name": r.name, "scopes": list(r.scopes), "revoked": r.revoked,
                 "created_at": admin_cases.iso(r.created_at)}
                for r in records
            ]
        )  # fmt: skip
    else:
        for r in records:
            state = "revoked" if r.revoked else "active "
            print(f"{r.name}  {state}  {admin_cases.iso(r.created_at)}  {' '.join(r.scopes)}")
    return 0


def cmd_admin_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    _audited(settings, "admin-tokens.revoke", None,
             lambda uow: admin_cases.revoke_admin_token(uow, args.name))  # fmt: skip
    print(f"revoked admin token {args.name}")
    return 0


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> int:
    """The audit log as JSON lines, oldest first (the API's entries)."""
    entries = _run(
        settings, lambda uow: admin_cases.audit_log(uow, actor=args.actor, **_filters(args))
    )
    for e in entries:
        _print_json(
            {"id": e.id, "at": admin_cases.iso(e.at), "actor": e.actor, "action": e.action,
             "tenant": e.tenant, "request_id": e.request_id, "outcome": e.outcome}
        )  # fmt: skip
    return 0


def _flag_or_file(value: str | None, path: str | None, flag: str, noun: str) -> str | None:
    """FLAG VALUE, or FLAG-file PATH (`-`: standard input), not both; a trailing newline is
    dropped (docs/providers.md: secrets stay out of shell history). `noun`: "access token"."""
    if path is None:
        return value
    if value is not None:
        raise CliError(f"give {flag} or {flag}-file, not both")
    if path == "-":
        try:
            raw = sys.stdin.read()
        except UnicodeDecodeError:
            raise CliError(f"the {noun} on standard input is not UTF-8 text") from None
    else:
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise CliError(f"cannot read {flag}-file {path}: {reason}") from None
    read = raw.removesuffix("\n").removesuffix("\r")
    if not read:
        raise CliError(f"{flag}-file holds no {noun.split()[-1]}")
    return read


def _access_token(args: argparse.Namespace) -> str | None:
    return _flag_or_file(args.access_token, args.access_token_file, "--access-token",
                         "access token")  # fmt: skip


def cmd_accounts_provision(args: argparse.Namespace, settings: Settings) -> int:
    token = _access_token(args)
    account = _audited(
        settings,
        "accounts.provision",
        args.api_key,
        lambda uow: account_cases.provision_account(
            uow,
            api_key=args.api_key,
            provider=Provider(args.provider),
            external_id=args.external_id,
            name=args.name,
            access_token=token,
            phone_number_id=args.phone_number_id,
            waba_id=args.waba_id,
        ),
    )
    shown = {
        "provider": account.provider.value,
        "external_id": account.external_id,
        "api_key": account.api_key,
        "applications": account.applications,
    }
    if account.name is not None:
        shown["name"] = account.name
    if args.json:
        _print_json(shown)
    else:
        print(
            f"provisioned {account.provider.value} account {account.external_id} "
            f"for {account.api_key}"
        )
    return 0


def cmd_accounts_set_token(args: argparse.Namespace, settings: Settings) -> int:
    token = _access_token(args)
    if token is None:
        raise CliError("give the new token with --access-token or --access-token-file")
    _audited(
        settings,
        "accounts.set-token",
        None,
        lambda uow: account_cases.replace_access_token(
            uow, provider=Provider(args.provider), external_id=args.external_id,
            access_token=token,
        ),
        tenant_of=lambda account: account.api_key,  # the owner's
    )  # fmt: skip
    print(f"replaced the access token of {args.provider} account {args.external_id}")
    return 0


def cmd_fake_provider(argv: list[str]) -> int:
    """Needs no settings nor database: a fake provider for the tour (docs/providers.md)."""
    from . import fakes  # the fakes' own modules load only for this command

    return fakes.main(argv)


def cmd_sandbox_inbound(args: argparse.Namespace, settings: Settings) -> int:
    """A simulated customer's message, checked as the sandbox API checks it."""
    body: dict[str, Any] = {}
    if args.content is not None:
        try:
            content = json.loads(args.content)
        except ValueError as exc:
            raise CliError(f"--content is not JSON: {exc}") from None
        if not isinstance(content, dict):
            raise CliError('--content must be a JSON object, such as \'{"text": "hi"}\'')
        body.update(content)
    if args.text is not None:
        body["text"] = args.text
    body.update(channel=args.channel, to=args.to, message_type=args.message_type)
    body["from"] = args.sender
    if args.context is not None:
        body["context"] = args.context
    inbound = message_bodies.inbound_message(json.dumps(body).encode())
    message_uuid = _run(settings, lambda uow: message_cases.operator_inbound(uow, inbound))
    _print_json({"message_uuid": message_uuid}) if args.json else print(message_uuid)
    return 0


def cmd_sandbox_read(args: argparse.Namespace, settings: Settings) -> int:
    _run(settings, lambda uow: message_cases.operator_read(uow, args.message_uuid))
    print(f"read {args.message_uuid}")
    return 0


def cmd_messages_redact(args: argparse.Namespace, settings: Settings) -> int:
    key, uuid = args.api_key, args.message_uuid
    _audited(settings, "messages.redact", key,
             lambda uow: retention_cases.operator_redact(uow, key, uuid))  # fmt: skip
    print(f"redacted {args.message_uuid}")
    return 0


def cmd_sandbox_messages(args: argparse.Namespace, settings: Settings) -> int:
    params = {
        k: str(v)
        for k, v in (
            ("page_number", args.page),
            ("page_size", args.page_size),
            ("account", args.account),
            ("direction", args.direction),
            ("status", args.status),
            ("q", args.search),
        )
        if v is not None
    }
    query = message_bodies.messages_query(params)
    page = _run(settings, lambda uow: message_cases.operator_messages(uow, query))
    if args.json:
        _print_json(
            {
                "page_number": page.page_number,
                "page_size": page.page_size,
                "total_items": page.total_items,
                "total_pages": page.total_pages,
                "messages": [message_json(m) for m in page.items],
            }
        )
        return 0
    if not page.items:
        print("no messages")
        return 0
    for m in page.items:  # newest first, a line each, as `webhooks list`
        arrow = f"{m.sender} -> {m.to}"
        print(f"{m.uuid}  {m.direction:8}  {m.channel:13}  {m.message_type:8}  "
              f"{m.status or 'queued':13}  {arrow}")  # fmt: skip
    print(f"page {page.page_number} of {page.total_pages}, {page.total_items} messages")
    return 0


def _faults_line(channel: str, external_id: str, faults: Faults) -> str:
    delay = f"{faults.delay:g} s" if faults.delay else "none"
    return f"{channel} {external_id}: delay {delay}, fail {faults.fail or 'none'}"


def cmd_sandbox_faults(args: argparse.Namespace, settings: Settings) -> int:
    """An account's fault switches: printed; with --delay or --fail, set (the other kept)."""
    channel, external_id = args.channel, args.external_id
    if args.delay is None and args.fail is None:
        faults = _run(
            settings, lambda uow: sandbox_cases.operator_faults(uow, channel, external_id)
        )
    else:
        given = {}
        if args.delay is not None:
            given["delay"] = args.delay
        if args.fail is not None:
            given["fail"] = None if args.fail == "none" else args.fail
        # The API's body parser: the same types and names in errors.
        wanted = message_bodies.faults_body(json.dumps(given).encode())
        max_delay = rules.sandbox_delay_max(settings.provider_timeout_seconds)

        def change(current: Faults) -> Faults:
            return Faults(
                wanted.delay if "delay" in given else current.delay,
                wanted.fail if "fail" in given else current.fail,
            )

        faults, _ = _audited(
            settings,
            "sandbox.faults",
            None,
            lambda uow: sandbox_cases.operator_set_faults(
                uow, channel, external_id, change, max_delay
            ),
            tenant_of=lambda changed: changed[1],
        )
    if args.json:
        _print_json({"delay": faults.delay, "fail": faults.fail})
    else:
        print(_faults_line(channel, external_id, faults))
    return 0


def cmd_webhooks_list(args: argparse.Namespace, settings: Settings) -> int:
    hooks = _run(
        settings, lambda uow: webhook_cases.list_webhooks(uow, state=args.state, **_filters(args))
    )
    if args.json:
        _print_json([webhook_json(h) for h in hooks])
        return 0
    if not hooks:
        print("no webhooks" + (f" {args.state}" if args.state else ""))
        return 0
    for h in hooks:
        last = h.attempts[-1] if h.attempts else None
        answer = "" if last is None else f"  last: {last.status_code or last.error}"
        print(f"{h.id}  {h.state:9}  {h.kind:7}  {h.message_uuid}  {h.url}{answer}")
    return 0


def cmd_webhooks_redeliver(args: argparse.Namespace, settings: Settings) -> int:
    if args.failed == (args.webhook_id is not None):
        raise CliError("give a webhook's id, or --failed (every failed webhook), not both")
    if not args.failed:
        if args.tenant or args.since or args.until:
            raise CliError("--tenant, --since and --until filter --failed")
        _audited(settings, "webhooks.redeliver", None,
                 lambda uow: webhook_cases.redeliver_webhook(uow, args.webhook_id),
                 tenant_of=lambda owner: owner)  # fmt: skip
        print(f"webhook {args.webhook_id} is pending again: a running server sends it now")
        return 0
    done = _audited(
        settings,
        "webhooks.redeliver-failed",
        args.tenant,
        lambda uow: webhook_cases.redeliver_failed(uow, **_filters(args)),
        detail_of=webhook_cases.redelivered_outcome,
    )
    if args.json:
        _print_json({"redelivered": done.redelivered, "skipped_content_removed": done.skipped})
    else:
        print(f"{webhook_cases.redelivered_outcome(done)}: a running server sends them now")
    return 0


def _secret(args: argparse.Namespace) -> str | None:
    return _flag_or_file(args.secret, args.secret_file, "--secret", "signature secret")


def _webhook_line(delivery: Any, checked: bool) -> str:
    """A received webhook in a line: time, path, message_uuid, status or type, a short text,
    and whether its signature verifies (never the token itself)."""
    from .testing.receiver import clock

    what = f"status {delivery.status}" if delivery.status else f"inbound {delivery.message_type}"
    if delivery.json is None:
        what = "(not JSON)"
    text = delivery.text
    if text is None and delivery.status:
        error = delivery.json.get("error") if isinstance(delivery.json, dict) else None
        text = error.get("title") if isinstance(error, dict) else None
    shown = "" if text is None else " " + json.dumps(text if len(text) <= 60 else text[:57] + "...")
    verdict = delivery.verdict.describe() if checked else "signature not checked (no --secret)"
    return (f"{clock(delivery.received_at)}  {delivery.method} {delivery.path}  "
            f"{delivery.message_uuid or '-'}  {what}{shown}  {verdict}")  # fmt: skip


def cmd_webhooks_receive(args: argparse.Namespace, settings: Settings) -> int:
    """The testing kit's receiver on a port: a line per webhook, its signature checked with
    --secret (the tenant's signature secret). Answers 200; Ctrl-C stops it."""
    import threading

    from .server import check_can_listen
    from .testing.receiver import WebhookReceiver

    secret = _secret(args)
    if args.port != 0:
        check_port(args.port, "--port")
        check_can_listen(args.host, args.port)
    lock = threading.Lock()

    def show(delivery: Any) -> None:
        with lock:
            print(_webhook_line(delivery, secret is not None), flush=True)

    receiver = WebhookReceiver(host=args.host, port=args.port, signature_secret=secret,
                               on_delivery=show)  # fmt: skip
    checking = "checked with --secret" if secret else "not checked: no --secret"
    print(f"receiving webhooks at {receiver.url()}/ (signatures {checking}); Ctrl-C stops",
          flush=True)  # fmt: skip

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, and a stop from a process manager, end it alike (even where the shell that
    # started it in the background left SIGINT ignored).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.close()
    with lock:
        print(f"stopped; {len(receiver.deliveries)} webhooks received", flush=True)
    return 0


def cmd_certificates(args: argparse.Namespace, settings: Settings) -> int:
    """A local CA and a server certificate for 127.0.0.1 / localhost (the testing kit's
    maker), and the lines that serve HTTPS with them and make Vonage's SDK trust them."""
    from .testing.certificates import make_certificates

    out = Path(args.out).resolve()
    names = ("ca.pem", "server.pem", "server.key")
    taken = [str(out / name) for name in names if (out / name).exists()]
    if taken:
        raise CliError(f"{taken[0]} exists: choose another --out, or remove it first")
    if args.days <= 0:
        raise CliError(f"--days must be a positive number of days, got {args.days}")
    out.mkdir(parents=True, exist_ok=True)
    ca, cert, key = (shlex.quote(str(path)) for path in make_certificates(out, days=args.days))
    print(f"wrote {ca} (the CA: trust this one), {cert} and {key} (0600), for 127.0.0.1 and "
          f"localhost, valid {args.days:g} days")  # fmt: skip
    print("Serve HTTPS with them:")
    print(f"  chatapp-accounts serve --port 8443 --ssl-certfile {cert} --ssl-keyfile {key}")
    print("Make Vonage's Python SDK trust them (its HTTP client, requests, reads this variable):")
    print(f"  export REQUESTS_CA_BUNDLE={ca}")
    print("curl:")
    print(f"  curl --cacert {ca} https://127.0.0.1:8443/readyz")
    return 0


def cmd_webhooks_show(args: argparse.Namespace, settings: Settings) -> int:
    detail = _run(
        settings,
        lambda uow: webhook_cases.operator_webhook(uow, SecurityService(), args.webhook_id),
    )
    shown = webhook_detail_json(detail)
    if args.json:
        _print_json(shown)
        return 0
    print(f"webhook {shown['id']}  {shown['state']}  {shown['kind']}  {shown['message_uuid']}")
    print(f"  to {shown['url']}")
    print("  body " + json.dumps(shown["body"]))
    for a in shown["attempts"]:
        answer = a["status_code"] or a["error"]
        signature = a["signature"]
        verdict = "not sent" if signature is None else (
            "signature verifies" if signature["verified"] else f"signature: {signature['reason']}"
        )  # fmt: skip
        print(f"  {a['timestamp']}  {answer}  {a['latency_ms']} ms  {verdict}")
    return 0


def cmd_webhooks_resend(args: argparse.Namespace, settings: Settings) -> int:
    try:
        raw = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read --body {args.body}: {exc.strerror}") from None
    new, _ = _audited(
        settings,
        "webhooks.resend",
        None,
        lambda uow: webhook_cases.operator_resend(
            uow, args.webhook_id, lambda: message_bodies.webhook_body(raw)
        ),
        tenant_of=lambda made: made[1],
    )
    print(f"webhook {new}: webhook {args.webhook_id} with the body given, pending")
    return 0


def cmd_secrets_new_key(args: argparse.Namespace, settings: Settings) -> int:
    print(new_key())
    return 0


def cmd_secrets_rotate(args: argparse.Namespace, settings: Settings) -> int:
    engine, cipher = migrated(settings)
    try:
        report = rotate_tokens(engine, cipher)
    except TokenDecryptError as exc:
        raise CliError(
            f"a stored token cannot be decrypted with the configured keys: {exc}"
        ) from None
    finally:
        engine.dispose()
    print(
        f"re-encrypted {report.rotated} stored secrets (access tokens, signature secrets) under "
        "the first key; "
        f"{report.already_current} already were; {report.changed_meanwhile} changed meanwhile "
        "(and are under it too). Keys other than the first are no longer needed."
    )
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, its usage errors said in one line like every other error (the documented way
    to change them: override `error`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"chatapp-accounts: error: {message} (see {self.prog} --help)\n")


def _not_utf8(argv: Sequence[str]) -> int | None:
    """The position of the first argument that is not valid UTF-8 (Python keeps such bytes as
    lone surrogates, which nothing downstream can encode), or None."""
    for position, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return position
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chatapp-accounts",
        description="Vonage External Accounts API server. Settings come from CHATAPP_* "
        "environment variables (see docs/configuration.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="migrate the database and serve the APIs")
    serve.add_argument("--host", help="address to listen on (CHATAPP_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (CHATAPP_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (CHATAPP_WORKERS, default 1)")
    serve.add_argument(
        "--ssl-certfile", help="serve HTTPS with this PEM certificate (CHATAPP_SSL_CERTFILE)"
    )
    serve.add_argument("--ssl-keyfile", help="the certificate's private key (CHATAPP_SSL_KEYFILE)")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)

    tenants = sub.add_parser("tenants", help="api_key / api_secret pairs").add_subparsers(
        dest="tenants_command", required=True, metavar="ACTION"
    )
    create = tenants.add_parser("create", help="make a tenant and print its secret, once")
    create.add_argument(
        "--json",
        action="store_true",
        help='print {"api_key", "api_secret", "signature_secret"}',
    )
    create.set_defaults(func=cmd_tenants_create)
    listing = tenants.add_parser("list", help="list tenants (never their secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_tenants_list)
    revoke = tenants.add_parser("revoke", help="stop a tenant's credentials working, at once")
    revoke.add_argument("api_key")
    revoke.set_defaults(func=cmd_tenants_revoke)
    signing = tenants.add_parser(
        "signature-secret",
        help="give a tenant a new webhook signature secret and print it, once",
    )
    signing.add_argument("api_key")
    signing.add_argument(
        "--json", action="store_true", help='print {"api_key", "signature_secret"}'
    )
    signing.set_defaults(func=cmd_tenants_signature_secret)
    resume = tenants.add_parser("resume", help="undo a revoke: the credentials work again")
    resume.add_argument("api_key")
    resume.set_defaults(func=cmd_tenants_resume)
    limits = tenants.add_parser(
        "limits", help="show a tenant's limits per second, or set them (docs/limits.md)"
    )
    limits.add_argument("api_key")
    limits.add_argument(
        "--requests", type=_limit, help="requests per second on each API but /v1/messages: "
        "a number, or 'default'",
    )  # fmt: skip
    limits.add_argument(
        "--messages", type=_limit, help="messages per second on /v1/messages: a number, or "
        "'default'",
    )  # fmt: skip
    limits.add_argument("--json", action="store_true")
    limits.set_defaults(func=cmd_tenants_limits)
    delete = tenants.add_parser("delete", help="delete a tenant and all its data")
    delete.add_argument("api_key")
    delete.add_argument("--yes", action="store_true", help="mean it")
    delete.set_defaults(func=cmd_tenants_delete)
    _admin_parsers(sub)

    accounts = sub.add_parser("accounts", help="external accounts").add_subparsers(
        dest="accounts_command", required=True, metavar="ACTION"
    )
    provision = accounts.add_parser(
        "provision", help="register an account for a tenant (any provider)"
    )
    provision.add_argument("provider", choices=PROVIDERS)
    provision.add_argument("external_id")
    provision.add_argument("--api-key", required=True, help="the tenant that will own it")
    provision.add_argument("--name")
    provision.add_argument(
        "--access-token",
        help="messenger: the page token (required); whatsapp: the Cloud API token of a live "
        "number; refused otherwise",
    )
    provision.add_argument(
        "--access-token-file", metavar="PATH",
        help="the access token from a file, or - for standard input (not in shell history)",
    )  # fmt: skip
    provision.add_argument(
        "--phone-number-id", help="whatsapp, live: the Cloud API phone number id (the sender)"
    )
    provision.add_argument("--waba-id", help="whatsapp, live: the WhatsApp Business Account id")
    provision.add_argument("--json", action="store_true")
    provision.set_defaults(func=cmd_accounts_provision)

    set_token = accounts.add_parser(
        "set-token", help="replace a messenger page's or a live whatsapp number's access token"
    )
    set_token.add_argument("provider", choices=("messenger", "whatsapp"))
    set_token.add_argument("external_id")
    set_token.add_argument("--access-token", help="the new token (prefer the file form)")
    set_token.add_argument(
        "--access-token-file", metavar="PATH", help="the new token from a file, or - for stdin"
    )
    set_token.set_defaults(func=cmd_accounts_set_token)

    fake = sub.add_parser(
        "fake-provider", add_help=False,
        help="a loopback fake of Meta's Graph API or Google's RBM, to try live mode without "
        "an account there (docs/providers.md); fake-provider meta|rbm --help",
    )  # fmt: skip
    fake.add_argument("fake_args", nargs=argparse.REMAINDER)  # main() hands them to it

    secrets = sub.add_parser("secrets", help="encryption keys").add_subparsers(
        dest="secrets_command", required=True, metavar="ACTION"
    )
    secrets.add_parser("new-key", help="print a new key for CHATAPP_ENCRYPTION_KEYS").set_defaults(
        func=cmd_secrets_new_key
    )
    secrets.add_parser(
        "rotate", help="re-encrypt every access token under the first key, while serving"
    ).set_defaults(func=cmd_secrets_rotate)
    _sandbox_parsers(sub)
    messages = sub.add_parser("messages", help="stored messages: redact").add_subparsers(
        dest="messages_command", required=True, metavar="ACTION"
    )
    redact = messages.add_parser(
        "redact",
        help="remove a message's content now (text, media, webhook bodies, stored requests "
        "and answers); its metadata stays",
    )
    redact.add_argument("message_uuid")
    redact.add_argument("--api-key", help="only if it is this tenant's message")
    redact.set_defaults(func=cmd_messages_redact)
    return parser


def _admin_parsers(sub: Any) -> None:
    tokens = sub.add_parser(
        "admin-tokens", help="tokens of the admin API (docs/operations.md)"
    ).add_subparsers(dest="admin_tokens_command", required=True, metavar="ACTION")
    create = tokens.add_parser("create", help="make an admin token and print it, once")
    create.add_argument("--name", required=True, help="who uses it (the audit log's actor)")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="SCOPE",
        help=f"one of {', '.join(admin_cases.SCOPES)} (repeat it, or separate with commas)",
    )
    create.add_argument("--json", action="store_true", help='print {"name", "token", "scopes"}')
    create.set_defaults(func=cmd_admin_tokens_create)
    listing = tokens.add_parser("list", help="list admin tokens (never the tokens)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_admin_tokens_list)
    revoke = tokens.add_parser("revoke", help="stop an admin token working, at once")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_admin_tokens_revoke)

    audit = sub.add_parser("audit", help="the audit log of operators' changes").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    export = audit.add_parser("export", help="print the audit log as JSON lines, oldest first")
    export.add_argument("--since", help="ISO 8601 time (no zone: UTC), inclusive")
    export.add_argument("--until", help="ISO 8601 time, exclusive")
    export.add_argument("--tenant", help="a tenant's api_key")
    export.add_argument("--actor", help="an admin token's name, or cli")
    export.add_argument("--limit", type=int, default=admin_cases.AUDIT_LIMIT_MAX)
    export.set_defaults(func=cmd_audit_export)


def _sandbox_parsers(sub: Any) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        help="play the customer: send to an account, read, list messages; fault switches",
    ).add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    inbound = sandbox.add_parser("inbound", help="a customer sends a message to an account")
    inbound.add_argument("channel", choices=sorted(CHANNEL_PROVIDERS))
    inbound.add_argument("to", help="the account's external_id")
    inbound.add_argument("sender", metavar="from", help="the customer")
    inbound.add_argument("--message-type", default="text")
    inbound.add_argument("--text", help="the text of a text message")
    inbound.add_argument("--content", help="the message's other fields, as a JSON object")
    inbound.add_argument("--context", help="the message_uuid replied to")
    inbound.add_argument("--json", action="store_true")
    inbound.set_defaults(func=cmd_sandbox_inbound)
    read = sandbox.add_parser("read", help="the customer reads a delivered message")
    read.add_argument("message_uuid")
    read.set_defaults(func=cmd_sandbox_read)
    listing = sandbox.add_parser("messages", help="messages, newest first (--json: in full)")
    listing.add_argument("--account", help="an external_id: messages from or to it")
    listing.add_argument("--direction", choices=("outbound", "inbound"))
    listing.add_argument("--status")
    listing.add_argument(
        "--search", metavar="QUERY", help="words and operators, as the inbox's search box: "
        "account: customer: to: from: status: type: channel: direction: before: after:"
    )  # fmt: skip
    listing.add_argument("--page", type=int)
    listing.add_argument("--page-size", type=int)
    listing.add_argument(
        "--json", action="store_true", help="the page as JSON: statuses, webhooks, attempts"
    )
    listing.set_defaults(func=cmd_sandbox_messages)
    faults = sandbox.add_parser(
        "faults",
        help="an account's fault switches: print them, or set them with --delay / --fail",
    )
    faults.add_argument("channel", choices=sorted(CHANNEL_PROVIDERS))
    faults.add_argument("external_id", help="the account's external_id")
    faults.add_argument(
        "--delay", type=_seconds, metavar="S",
        help="seconds the sandbox waits before it takes each send from the account (0: none)",
    )  # fmt: skip
    faults.add_argument(
        "--fail", choices=("rejected", "undeliverable", "none"),
        help="a failure forced on every send from the account (none: clears it)",
    )  # fmt: skip
    faults.add_argument("--json", action="store_true")
    faults.set_defaults(func=cmd_sandbox_faults)
    webhooks = sub.add_parser("webhooks", help="the webhook outbox").add_subparsers(
        dest="webhooks_command", required=True, metavar="ACTION"
    )
    hooks = webhooks.add_parser("list", help="webhooks, newest first")
    hooks.add_argument("--state", choices=STATES)
    _outbox_filters(hooks)
    hooks.add_argument("--limit", type=int, default=webhook_cases.LIST_DEFAULT)
    hooks.add_argument("--json", action="store_true")
    hooks.set_defaults(func=cmd_webhooks_list)
    again = webhooks.add_parser(
        "redeliver",
        help="send a (failed) webhook again, from now; --failed: every failed one (filtered)",
    )
    again.add_argument("webhook_id", nargs="?")
    again.add_argument("--failed", action="store_true", help="every failed webhook")
    _outbox_filters(again)
    again.add_argument("--json", action="store_true", help="--failed's counts as JSON")
    again.set_defaults(func=cmd_webhooks_redeliver)
    show = webhooks.add_parser(
        "show", help="a webhook's attempts: request, answer, latency, signature check"
    )
    show.add_argument("webhook_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_webhooks_show)
    resend = webhooks.add_parser(
        "resend", help="edit and resend: a copy of a webhook with another body, sent now"
    )
    resend.add_argument("webhook_id")
    resend.add_argument("--body", required=True, metavar="FILE", help="a JSON object; - : stdin")
    resend.set_defaults(func=cmd_webhooks_resend)

    receive = webhooks.add_parser(
        "receive",
        help="a webhook receiver on a port: prints each webhook and whether its signature "
        "verifies (docs/testing-kit.md)",
    )
    receive.add_argument("--port", type=int, required=True, help="port to listen on (0: any)")
    receive.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    receive.add_argument("--secret", help="the tenant's signature secret (prefer the file form)")
    receive.add_argument(
        "--secret-file", metavar="PATH", help="the signature secret from a file, or - for stdin"
    )
    receive.set_defaults(func=cmd_webhooks_receive)
    certs = sub.add_parser(
        "certificates",
        help="write a local CA and a certificate for 127.0.0.1/localhost, to serve HTTPS",
    )
    certs.add_argument("--out", required=True, metavar="DIR", help="the folder to write into")
    certs.add_argument("--days", type=float, default=30, help="validity (default 30 days)")
    certs.set_defaults(func=cmd_certificates)


def _outbox_filters(parser: argparse.ArgumentParser) -> None:
    """The outbox's filters, as the admin API's (and `audit export`'s)."""
    parser.add_argument("--tenant", help="a tenant's api_key")
    parser.add_argument("--since", help="made at or after this ISO 8601 time (no zone: UTC)")
    parser.add_argument("--until", help="made before this ISO 8601 time")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    """--tenant, --since, --until (and --limit, where the command has it), as the operators'
    use cases take them (the audit log's, the outbox's)."""
    return {k: getattr(args, k) for k in ("tenant", "since", "until", "limit") if k in args}


def _seconds(value: str) -> float:
    """--delay's argument: a number (its bounds are the use case's); argparse's one-line error
    otherwise."""
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidInput):
        return "; ".join(f"{p.name}: {p.reason}" for p in exc.params)
    if isinstance(exc, MessageRejected) and exc.params:
        return exc.detail + " " + "; ".join(f"{p.name}: {p.reason}" for p in exc.params)
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        text = str(orig if orig is not None else exc).strip().splitlines()
        return f"database error: {text[0] if text else type(exc).__name__}"
    return str(exc) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bad = _not_utf8(argv)
    if bad is not None:
        print(f"chatapp-accounts: error: argument {bad} is not valid UTF-8", file=sys.stderr)
        return 2
    if argv and argv[0] == "fake-provider":  # its own arguments, --help included
        return cmd_fake_provider(list(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        code: int = args.func(args, settings)
        return code
    except (ConfigError, DomainError, CliError, SQLAlchemyError, OSError) as exc:
        print(f"chatapp-accounts: error: {_describe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
