"""The repositories of domain/ports.py, in plain SQL on the unit of work's connection.

The SQL is the same on SQLite and PostgreSQL (written with `?`, see db.Database.sql); the
schema it reads is tables.py's, created by the migrations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..domain.errors import CannotLink, PhoneNumberIdTaken
from ..domain.models import (
    NO_FAULTS,
    Account,
    Application,
    ApplicationKey,
    Dropped,
    Faults,
    Provider,
    TenantLimits,
    TenantRecord,
)
from ..domain.providers import SenderCredentials
from ..security.tokens import TokenCipher, row_binding, signature_binding
from .db import Connection, Database

_ACCOUNT = (
    "SELECT a.provider, a.external_id, t.api_key, a.name, a.access_token, a.application_id "
    "FROM accounts a JOIN tenants t ON t.id = a.tenant_id "
)
_KEY = "a.tenant_id = ? AND a.provider = ? AND a.external_id = ?"
# What a channel needs of a sender (credentials() and senders()): a live channel's credentials,
# the sandbox's fault switches, in one read.
_SENDER = (
    "SELECT a.tenant_id, a.provider, a.external_id, a.access_token, a.phone_number_id, "
    "a.waba_id, a.sandbox_delay, a.sandbox_fail FROM accounts a "
)


def _page(where: str, order: str) -> str:
    """A page query; `where` and `order` are always constants of this module. The owner is
    known: no join for its api_key."""
    return (
        "SELECT a.provider, a.external_id, a.name, a.access_token, a.application_id "  # noqa: S608
        "FROM accounts a WHERE a.pk IN (SELECT pk FROM accounts WHERE " + where
        + " ORDER BY pk " + order + " LIMIT ? OFFSET ?) ORDER BY a.pk"
    )  # fmt: skip


def _first_pages(where: str) -> str:
    return (
        "SELECT provider, external_id, name, access_token, application_id "
        "FROM accounts WHERE " + where + " ORDER BY pk LIMIT ? OFFSET ?"
    )


# The most senders one statement of SqlAccounts.senders reads.
_SENDERS_MAX = 100

# Up to this offset a page reads its rows directly (_first_pages), past it by their keys (_page).
_SHALLOW = 40


class Statements:
    """The statements of one dialect, translated once per database."""

    def __init__(self, db: Database) -> None:
        q = db.sql
        self.account_get = q(_ACCOUNT + "WHERE " + _KEY)
        # A page or number has one owner across tenants: account_routes, a reference table
        # (docs/scaling.md), written before the account in its transaction, decides it.
        self.account_owner = q(
            "SELECT tenant_id FROM account_routes WHERE provider = ? AND external_id = ?"
        )
        self.account_route = q(
            "INSERT INTO account_routes (tenant_id, provider, external_id) VALUES (?, ?, ?) "
            "ON CONFLICT (provider, external_id) DO NOTHING"
        )
        self.account_insert = q(
            "INSERT INTO accounts (tenant_id, provider, external_id, name, access_token, "
            "application_id, phone_number_id, waba_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        # A live WhatsApp number's Cloud API id has one owner too (Meta's callbacks name it).
        self.phone_route = q(
            "INSERT INTO phone_number_routes (phone_number_id, tenant_id, external_id) "
            "VALUES (?, ?, ?) ON CONFLICT (phone_number_id) DO NOTHING"
        )
        self.phone_route_delete = q(
            "DELETE FROM phone_number_routes WHERE tenant_id = ? AND external_id = ?"
        )
        self.phone_route_get = q(
            "SELECT tenant_id, external_id FROM phone_number_routes WHERE phone_number_id = ?"
        )
        self.account_credentials = q(_SENDER + "WHERE " + _KEY)
        self.account_faults = q(
            "SELECT a.sandbox_delay, a.sandbox_fail FROM accounts a WHERE " + _KEY  # noqa: S608 - _KEY is this module's
        )
        self.account_set_faults = q(
            "UPDATE accounts SET sandbox_delay = ?, sandbox_fail = ? "
            "WHERE tenant_id = ? AND provider = ? AND external_id = ?"
        )
        self.account_set_name = q(
            "UPDATE accounts SET name = ? WHERE tenant_id = ? AND provider = ? AND external_id = ?"
        )
        self.account_set_token = q(
            "UPDATE accounts SET access_token = ? "
            "WHERE tenant_id = ? AND provider = ? AND external_id = ?"
        )
        self.account_set_app = q(
            "UPDATE accounts SET application_id = ? "
            "WHERE tenant_id = ? AND provider = ? AND external_id = ?"
        )
        # One statement decides between racing links: the database, not a read in the process.
        self.account_link = q(
            "UPDATE accounts SET application_id = ? "
            "WHERE tenant_id = ? AND provider = ? AND external_id = ? "
            "AND (application_id IS NULL OR application_id = ?)"
        )
        self.account_unlink = q(
            "UPDATE accounts SET application_id = NULL "
            "WHERE tenant_id = ? AND provider = ? AND external_id = ? AND application_id = ?"
        )
        self.account_unlink_all = q(
            "UPDATE accounts SET application_id = NULL WHERE tenant_id = ? AND application_id = ?"
        )
        self.account_delete = q(
            "DELETE FROM accounts WHERE tenant_id = ? AND provider = ? AND external_id = ?"
        )
        self.account_route_delete = q(
            "DELETE FROM account_routes WHERE tenant_id = ? AND provider = ? AND external_id = ?"
        )
        # Pages: the primary keys come from a covering index (the skip reads no rows), then
        # only those rows are read. Pages past the middle are read from the end.
        # The first pages read their rows directly: skipping a few rows costs less than the
        # second lookup (a tenth of the first page's query).
        self.account_page_first = q(_first_pages("tenant_id = ?"))
        self.account_page_provider_first = q(_first_pages("tenant_id = ? AND provider = ?"))
        self.account_page_asc = q(_page("tenant_id = ?", "ASC"))
        self.account_page_desc = q(_page("tenant_id = ?", "DESC"))
        self.account_page_provider_asc = q(_page("tenant_id = ? AND provider = ?", "ASC"))
        self.account_page_provider_desc = q(_page("tenant_id = ? AND provider = ?", "DESC"))
        # Counts kept by triggers: no scan of the tenant's accounts.
        self.account_count = q("SELECT COALESCE(SUM(n), 0) FROM account_counts WHERE tenant_id = ?")
        self.account_count_provider = q(
            "SELECT COALESCE(SUM(n), 0) FROM account_counts WHERE tenant_id = ? AND provider = ?"
        )
        apps = "SELECT id, name, public_key, capabilities, privacy FROM applications "
        self.app_insert = q(
            "INSERT INTO applications (id, tenant_id, name, public_key, capabilities, privacy, "
            "has_messages) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        # An application's tenant, found from its id alone (a JWT's): application_routes.
        self.app_route = q("INSERT INTO application_routes (id, tenant_id) VALUES (?, ?)")
        self.app_route_delete = q("DELETE FROM application_routes WHERE tenant_id = ? AND id = ?")
        self.app_get = q(apps + "WHERE tenant_id = ? AND id = ?")
        # An account and the application linked to it, in one statement (a send's sender).
        self.account_linked = q(
            "SELECT p.id, p.name, p.public_key, p.capabilities, p.privacy FROM accounts a "  # noqa: S608 - _KEY is this module's
            "LEFT JOIN applications p ON p.id = a.application_id AND p.tenant_id = a.tenant_id "
            "WHERE " + _KEY
        )
        self.app_replace = q(
            "UPDATE applications SET name = ?, public_key = ?, capabilities = ?, privacy = ?, "
            "has_messages = ? WHERE tenant_id = ? AND id = ?"
        )
        self.app_delete = q("DELETE FROM applications WHERE tenant_id = ? AND id = ?")
        self.app_page = q(apps + "WHERE tenant_id = ? ORDER BY pk LIMIT ? OFFSET ?")
        self.app_count = q("SELECT COUNT(*) FROM applications WHERE tenant_id = ?")
        self.app_signing_key = q(
            "SELECT t.id, t.api_key, a.public_key FROM application_routes r "
            "JOIN tenants t ON t.id = r.tenant_id "
            "JOIN applications a ON a.tenant_id = r.tenant_id AND a.id = r.id "
            "WHERE r.id = ? AND NOT t.revoked"
        )
        tenant = "SELECT id, api_key, secret_hash, revoked, created_at FROM tenants "
        self.tenant_insert = q(
            "INSERT INTO tenants (api_key, secret_hash, revoked, signature_secret) "
            "VALUES (?, ?, ?, ?) RETURNING id"
        )
        self.tenant_by_key = q(tenant + "WHERE api_key = ?")
        self.tenant_api_key = q("SELECT api_key FROM tenants WHERE id = ?")
        # Through the partial pending indexes: a few rows, whatever the tenant's history.
        unleased = "state = 'pending' AND (claimed_until IS NULL OR claimed_until <= ?)"
        self.tenant_queued = q(
            f"SELECT (SELECT COUNT(*) FROM send_jobs WHERE tenant_id = t.id AND {unleased}), "  # noqa: S608 - constants
            f"(SELECT COUNT(*) FROM webhooks WHERE tenant_id = t.id AND {unleased}) "
            "FROM tenants t WHERE t.api_key = ?"
        )
        self.tenant_all = q(tenant + "ORDER BY id")
        self.tenant_revoke = q("UPDATE tenants SET revoked = ? WHERE api_key = ?")
        self.tenant_delete = q("DELETE FROM tenants WHERE api_key = ?")
        self.tenant_set_signature = q("UPDATE tenants SET signature_secret = ? WHERE api_key = ?")
        self.tenant_signature = q("SELECT signature_secret FROM tenants WHERE api_key = ?")
        self.tenant_count = q("SELECT COUNT(*) FROM tenants")
        self.tenant_limits = q(
            "SELECT requests_per_second, messages_per_second FROM tenants WHERE api_key = ?"
        )
        self.tenant_set_limits = q(
            "UPDATE tenants SET requests_per_second = ?, messages_per_second = ? WHERE api_key = ?"
        )

    # The account list's reads: which statement, with which parameters.

    def account_page(
        self, owner: int, provider: Provider | None, offset: int, limit: int, total: int
    ) -> tuple[str, tuple[Any, ...]]:
        """`limit` accounts from `offset` in creation order. Past the middle of `total`, the page
        is found counting from the end, so the deepest pages cost as little as the first."""
        if offset > total // 2:
            limit, offset = min(limit, max(total - offset, 0)), max(total - offset - limit, 0)
            statement = (
                self.account_page_desc if provider is None else self.account_page_provider_desc
            )
        elif offset <= _SHALLOW:
            statement = (
                self.account_page_first if provider is None else self.account_page_provider_first
            )
        else:
            statement = (
                self.account_page_asc if provider is None else self.account_page_provider_asc
            )
        if provider is None:
            return statement, (owner, limit, offset)
        return statement, (owner, provider.value, limit, offset)

    def account_count_of(
        self, tenant: int, provider: Provider | None
    ) -> tuple[str, tuple[Any, ...]]:
        if provider is None:
            return self.account_count, (tenant,)
        return self.account_count_provider, (tenant, provider.value)


_PROVIDERS = {p.value: p for p in Provider}


class AccountRows:
    """Accounts made rows and rows made accounts: the access token encrypted, bound to its
    row, and decrypted."""

    def __init__(self, cipher: TokenCipher) -> None:
        self._cipher = cipher

    def encrypt(self, provider: Provider, external_id: str, token: str | None) -> bytes | None:
        if token is None:
            return None
        return self._cipher.encrypt(token, row_binding(provider.value, external_id))

    def account(self, row: Any) -> Account:
        provider, external_id, api_key, name, token, application_id = row
        return Account(
            _PROVIDERS[provider],
            external_id,
            api_key,
            name,
            None if token is None else self.plain(provider, external_id, token),
            application_id,
        )

    def plain(self, provider: str, external_id: str, token: Any) -> str:
        return self._cipher.decrypt_row(
            token if type(token) is bytes else bytes(token), provider, external_id
        )

    def page(self, rows: Iterable[Any], api_key: str) -> list[Account]:
        """The rows of Statements.account_page, their owner's api_key known."""
        plain = self.plain
        return [  # account(), without a tuple and a call per row
            Account(_PROVIDERS[p], e, api_key, name, None if t is None else plain(p, e, t), app)
            for p, e, name, t, app in rows
        ]


class SqlAccounts:
    __slots__ = ("_conn", "_db", "_rows", "_sql")

    def __init__(self, db: Database, conn: Connection, sql: Statements, rows: AccountRows) -> None:
        self._db = db
        self._conn = conn
        self._sql = sql
        self._rows = rows

    async def add(self, tenant: int, account: Account) -> bool:
        p, e = account.provider, account.external_id
        if await self._conn.execute(self._sql.account_route, (tenant, p.value, e)) != 1:
            return False  # it has an owner
        number = account.phone_number_id
        if (
            number is not None
            and await self._conn.execute(self._sql.phone_route, (number, tenant, e)) != 1
        ):
            raise PhoneNumberIdTaken(number)
        try:
            await self._conn.execute(
                self._sql.account_insert,
                (tenant, p.value, e, account.name, self._rows.encrypt(p, e, account.access_token),
                 account.application_id, number, account.waba_id),
            )  # fmt: skip
        except self._db.IntegrityError:
            raise CannotLink() from None  # the application went away meanwhile
        return True

    async def credentials(
        self, tenant: int, provider: Provider, external_id: str
    ) -> SenderCredentials | None:
        row = await self._conn.fetchone(
            self._sql.account_credentials, (tenant, provider.value, external_id)
        )
        return self._sender(row)[1] if row is not None else None

    async def senders(
        self, keys: list[tuple[int, Provider, str]]
    ) -> dict[tuple[int, Provider, str], SenderCredentials]:
        # One statement for a claim's senders (most claims have a few), a key's test per
        # sender, each an index probe; past _SENDERS_MAX senders, one per that many.
        found: dict[tuple[int, Provider, str], SenderCredentials] = {}
        for start in range(0, len(keys), _SENDERS_MAX):
            chunk = keys[start : start + _SENDERS_MAX]
            where = " OR ".join(["(" + _KEY + ")"] * len(chunk))
            params = [value for t, p, e in chunk for value in (t, p.value, e)]
            rows = await self._conn.fetchall(self._db.sql(_SENDER + "WHERE " + where), params)
            found.update(self._sender(row) for row in rows)
        return found

    def _sender(self, row: Any) -> tuple[tuple[int, Provider, str], SenderCredentials]:
        tenant, provider, external_id, token, number, waba, delay, fail = row
        plain = None if token is None else self._rows.plain(provider, external_id, token)
        faults = _faults(delay, fail)
        key = (int(tenant), _PROVIDERS[provider], external_id)
        return key, SenderCredentials(plain, number, waba, faults)

    async def faults(self, tenant: int, provider: Provider, external_id: str) -> Faults | None:
        row = await self._conn.fetchone(
            self._sql.account_faults, (tenant, provider.value, external_id)
        )
        return _faults(*row) if row is not None else None

    async def set_faults(
        self, tenant: int, provider: Provider, external_id: str, faults: Faults
    ) -> bool:
        # No switch is NULL, as a new account's.
        values = (faults.delay or None, faults.fail, tenant, provider.value, external_id)
        return await self._conn.execute(self._sql.account_set_faults, values) == 1

    async def by_phone_number_id(self, phone_number_id: str) -> tuple[int, str] | None:
        row = await self._conn.fetchone(self._sql.phone_route_get, (phone_number_id,))
        return (int(row[0]), str(row[1])) if row is not None else None

    async def get(self, tenant: int, provider: Provider, external_id: str) -> Account | None:
        row = await self._conn.fetchone(
            self._sql.account_get, (tenant, provider.value, external_id)
        )
        return self._rows.account(row) if row is not None else None

    async def linked_application(
        self, tenant: int, provider: Provider, external_id: str
    ) -> tuple[bool, Application | None]:
        row = await self._conn.fetchone(
            self._sql.account_linked, (tenant, provider.value, external_id)
        )
        if row is None:
            return False, None
        return True, _to_application(row) if row[0] is not None else None

    async def owner(self, provider: Provider, external_id: str) -> int | None:
        row = await self._conn.fetchone(self._sql.account_owner, (provider.value, external_id))
        return int(row[0]) if row is not None else None

    async def update(
        self,
        tenant: int,
        provider: Provider,
        external_id: str,
        *,
        name: str | None,
        access_token: str | None,
        set_name: bool,
        set_access_token: bool,
    ) -> bool:
        key = (tenant, provider.value, external_id)
        changed = True
        if set_name:
            changed = await self._conn.execute(self._sql.account_set_name, (name, *key)) == 1
        if set_access_token:
            blob = self._rows.encrypt(provider, external_id, access_token)
            changed = await self._conn.execute(self._sql.account_set_token, (blob, *key)) == 1
        return changed

    async def set_application(
        self, tenant: int, provider: Provider, external_id: str, application_id: str | None
    ) -> bool:
        try:
            count = await self._conn.execute(
                self._sql.account_set_app, (application_id, tenant, provider.value, external_id)
            )
        except self._db.IntegrityError:
            return False
        return count == 1

    async def link(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool:
        try:
            count = await self._conn.execute(
                self._sql.account_link,
                (application_id, tenant, provider.value, external_id, application_id),
            )
        except self._db.IntegrityError:
            raise CannotLink() from None  # the application was deleted meanwhile
        return count == 1

    async def unlink(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool:
        count = await self._conn.execute(
            self._sql.account_unlink, (tenant, provider.value, external_id, application_id)
        )
        return count == 1

    async def unlink_everywhere(self, tenant: int, application_id: str) -> int:
        return await self._conn.execute(self._sql.account_unlink_all, (tenant, application_id))

    async def delete(self, tenant: int, provider: Provider, external_id: str) -> bool:
        key = (tenant, provider.value, external_id)
        if await self._conn.execute(self._sql.account_delete, key) != 1:
            return False
        await self._conn.execute(self._sql.account_route_delete, key)
        if provider is Provider.WHATSAPP:
            await self._conn.execute(self._sql.phone_route_delete, (tenant, external_id))
        return True

    async def page(
        self, tenant: int, api_key: str, provider: Provider | None, offset: int, limit: int,
        total: int,
    ) -> list[Account]:  # fmt: skip
        statement, params = self._sql.account_page(tenant, provider, offset, limit, total)
        return self._rows.page(await self._conn.fetchall(statement, params), api_key)

    async def count(self, tenant: int, provider: Provider | None) -> int:
        statement, params = self._sql.account_count_of(tenant, provider)
        return await _scalar(self._conn, statement, params)


async def _scalar(conn: Connection, statement: str, params: tuple[Any, ...] = ()) -> int:
    row = await conn.fetchone(statement, params)
    assert row is not None
    return int(row[0])


def _to_application(row: Any) -> Application:
    id_, name, public_key, capabilities, privacy = row
    return Application(id_, name, public_key, json.loads(capabilities), json.loads(privacy))


def _application_values(application: Application) -> tuple[Any, ...]:
    return (
        application.name,
        application.public_key,
        json.dumps(application.capabilities, separators=(",", ":")),
        json.dumps(application.privacy, separators=(",", ":")),
        application.has_messages,
    )


class SqlApplications:
    __slots__ = ("_conn", "_sql")

    def __init__(self, conn: Connection, sql: Statements) -> None:
        self._conn = conn
        self._sql = sql

    async def add(self, tenant: int, application: Application) -> None:
        name, key, caps, privacy, messages = _application_values(application)
        await self._conn.execute(self._sql.app_route, (application.id, tenant))
        await self._conn.execute(
            self._sql.app_insert, (application.id, tenant, name, key, caps, privacy, messages)
        )

    async def get(self, tenant: int, application_id: str) -> Application | None:
        row = await self._conn.fetchone(self._sql.app_get, (tenant, application_id))
        return _to_application(row) if row is not None else None

    async def replace(self, tenant: int, application: Application) -> bool:
        count = await self._conn.execute(
            self._sql.app_replace, (*_application_values(application), tenant, application.id)
        )
        return count == 1

    async def delete(self, tenant: int, application_id: str) -> bool:
        if await self._conn.execute(self._sql.app_delete, (tenant, application_id)) != 1:
            return False
        await self._conn.execute(self._sql.app_route_delete, (tenant, application_id))
        return True

    async def page(self, tenant: int, offset: int, limit: int) -> list[Application]:
        rows = await self._conn.fetchall(self._sql.app_page, (tenant, limit, offset))
        return [_to_application(row) for row in rows]

    async def count(self, tenant: int) -> int:
        return await _scalar(self._conn, self._sql.app_count, (tenant,))

    async def signing_key(self, application_id: str) -> ApplicationKey | None:
        row = await self._conn.fetchone(self._sql.app_signing_key, (application_id,))
        return ApplicationKey(int(row[0]), row[1], row[2]) if row is not None else None


class SqlTenants:
    __slots__ = ("_cipher", "_conn", "_sql")

    def __init__(self, conn: Connection, sql: Statements, cipher: TokenCipher) -> None:
        self._conn = conn
        self._sql = sql
        self._cipher = cipher

    def _sealed(self, api_key: str, signature_secret: str) -> bytes:
        return self._cipher.encrypt(signature_secret, signature_binding(api_key))

    async def add(self, api_key: str, secret_hash: str, signature_secret: str) -> int:
        sealed = self._sealed(api_key, signature_secret)
        return await _scalar(
            self._conn, self._sql.tenant_insert, (api_key, secret_hash, False, sealed)
        )

    async def set_signature_secret(self, api_key: str, signature_secret: str) -> bool:
        sealed = self._sealed(api_key, signature_secret)
        return await self._conn.execute(self._sql.tenant_set_signature, (sealed, api_key)) == 1

    async def signature_secret(self, api_key: str) -> str | None:
        row = await self._conn.fetchone(self._sql.tenant_signature, (api_key,))
        if row is None or row[0] is None:
            return None
        return self._cipher.decrypt(bytes(row[0]), signature_binding(api_key))

    async def by_api_key(self, api_key: str) -> TenantRecord | None:
        row = await self._conn.fetchone(self._sql.tenant_by_key, (api_key,))
        return _to_tenant(row) if row is not None else None

    async def api_key_of(self, tenant: int) -> str | None:
        row = await self._conn.fetchone(self._sql.tenant_api_key, (tenant,))
        return str(row[0]) if row is not None else None

    async def all(self) -> list[TenantRecord]:
        return [_to_tenant(row) for row in await self._conn.fetchall(self._sql.tenant_all)]

    async def revoke(self, api_key: str) -> bool:
        return await self.set_revoked(api_key, True)

    async def set_revoked(self, api_key: str, revoked: bool) -> bool:
        return await self._conn.execute(self._sql.tenant_revoke, (revoked, api_key)) == 1

    async def delete(self, api_key: str) -> bool:
        return await self._conn.execute(self._sql.tenant_delete, (api_key,)) == 1

    async def limits(self, api_key: str) -> TenantLimits | None:
        row = await self._conn.fetchone(self._sql.tenant_limits, (api_key,))
        return TenantLimits(row[0], row[1]) if row is not None else None

    async def set_limits(self, api_key: str, limits: TenantLimits) -> bool:
        params = (limits.requests_per_second, limits.messages_per_second, api_key)
        return await self._conn.execute(self._sql.tenant_set_limits, params) == 1

    async def count(self) -> int:
        return await _scalar(self._conn, self._sql.tenant_count)

    async def queued_work(self, api_key: str, now: float) -> Dropped:
        row = await self._conn.fetchone(self._sql.tenant_queued, (now, now, api_key))
        return Dropped(int(row[0]), int(row[1])) if row is not None else Dropped(0, 0)


def _faults(delay: Any, fail: Any) -> Faults:
    if delay is None and fail is None:
        return NO_FAULTS
    return Faults(float(delay or 0.0), fail)


def _to_tenant(row: Any) -> TenantRecord:
    id_, api_key, secret_hash, revoked, created = row
    return TenantRecord(
        id=int(id_),
        api_key=api_key,
        secret_hash=secret_hash,
        revoked=bool(revoked),
        created_at=created.isoformat() if hasattr(created, "isoformat") else str(created),
    )
