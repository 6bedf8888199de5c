"""The schema, as SQLAlchemy Core tables. Migrations in migrations/ create exactly this.

Constraint names follow one convention so that migrations are the same on SQLite and
PostgreSQL.

One schema, two sets of keys (docs/scaling.md, "Past one PostgreSQL"). On PostgreSQL every
table is either distributed by its tenant (`tenant_id` in its primary key, unique constraints
and foreign keys to other such tables: the schema Citus can shard by tenant) or a small
reference table (`tenants`, `account_routes`, `application_routes`, and the operators'
`admin_tokens` and `audit_log`, which belong to no tenant). SQLite keeps a lone
`pk` primary key, the only kind it autoincrements. PostgreSQL's keys put `pk` (or `uuid`, `id`)
first, so a lookup by it alone is one index probe as before.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

PENDING = text("state = 'pending'")
FAILED = text("state = 'failed'")
CONTENT_KEPT = text("content_removed_at IS NULL")
LIMITED = text("requests_per_second IS NOT NULL OR messages_per_second IS NOT NULL")


def _schema(postgresql: bool) -> MetaData:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def tenant_keys(*columns: str) -> tuple[str, ...]:
        """A key of a distributed table: with the tenant on PostgreSQL."""
        return (*columns, "tenant_id") if postgresql else columns

    def key() -> PrimaryKeyConstraint:
        return PrimaryKeyConstraint(*tenant_keys("pk"))

    def parent(column: str, target: str, ondelete: str = "CASCADE") -> ForeignKeyConstraint:
        """A foreign key to another distributed table: with the tenant on PostgreSQL."""
        table, referred = target.split(".")
        if postgresql and ondelete == "SET NULL":
            ondelete = f"SET NULL ({column})"  # the tenant stays (PostgreSQL 15)
        return ForeignKeyConstraint(
            list(tenant_keys(column)),
            [f"{table}.{c}" for c in tenant_keys(referred)],
            ondelete=ondelete,
        )

    def tenant() -> Column[int]:
        return Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)

    Table(
        "tenants",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("api_key", String(32), nullable=False),
        Column("secret_hash", String(128), nullable=False),
        Column("revoked", Boolean, nullable=False, server_default="0"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # Webhooks are signed with it (migration 0004): AES-GCM, bound to the tenant's api_key.
        Column("signature_secret", LargeBinary, nullable=True),
        # Its own limits per second (migration 0014, docs/limits.md); NULL: the default.
        Column("requests_per_second", Integer, nullable=True),
        Column("messages_per_second", Integer, nullable=True),
        UniqueConstraint("api_key"),
        Index("ix_tenants_limited", "id", sqlite_where=LIMITED, postgresql_where=LIMITED),
    )
    # How much of each tenant's limit on each API the processes took in each second.
    Table(
        "rate_windows",
        metadata,
        Column("tenant_id", Id, primary_key=True),
        Column("api", String(16), primary_key=True),
        Column("at_second", BigInteger, primary_key=True),
        Column("used", BigInteger, nullable=False),
        prefixes=["UNLOGGED"] if postgresql else [],
    )

    Table(
        "applications",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        Column("id", String(100), nullable=False),
        tenant(),
        Column("name", Text, nullable=False),
        Column("public_key", Text, nullable=False),
        Column("capabilities", Text, nullable=False),  # JSON, kept as given
        Column("privacy", Text, nullable=False),  # JSON
        Column("has_messages", Boolean, nullable=False),
        key(),
        UniqueConstraint(*tenant_keys("id")),
        Index("ix_applications_tenant_id_pk", "tenant_id", "pk"),
    )

    # Reference tables (migration 0007): what is unique across tenants, and finds the tenant
    # where a request names none. Written with the row they route to, in its transaction.
    # An application's id -> its tenant (a JWT names the application only).
    Table(
        "application_routes",
        metadata,
        Column("id", String(100), primary_key=True),
        tenant(),
    )
    # A provider's page or number has one owner across all tenants.
    Table(
        "account_routes",
        metadata,
        Column("provider", String(32), primary_key=True),
        Column("external_id", String(100), primary_key=True),
        tenant(),
    )

    # A WhatsApp number's Cloud API id -> its tenant and number (migration 0008): Meta's
    # callbacks name the receiving number by this id only.
    Table(
        "phone_number_routes",
        metadata,
        Column("phone_number_id", String(100), primary_key=True),
        tenant(),
        Column("external_id", String(100), nullable=False),
    )

    # Kept by triggers (migrations 0002, 0003) on every insert and delete of an account; a
    # count is the sum of its shards (one per PostgreSQL connection, modulo 16; SQLite has
    # shard 0 only).
    Table(
        "account_counts",
        metadata,
        Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        Column("provider", String(32), primary_key=True),
        Column("shard", SmallInteger, primary_key=True, server_default="0"),
        Column("n", BigInteger, nullable=False, server_default="0"),
    )

    Table(
        "accounts",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        tenant(),
        Column("provider", String(32), nullable=False),
        Column("external_id", String(100), nullable=False),
        Column("name", Text, nullable=True),
        Column("access_token", LargeBinary, nullable=True),  # AES-GCM ciphertext
        # One column, so one application per account is structural; deleting the application
        # unlinks it everywhere.
        Column("application_id", String(100), nullable=True),
        # WhatsApp's Cloud API ids (migration 0008); its token is `access_token`.
        Column("phone_number_id", String(100), nullable=True),
        Column("waba_id", String(100), nullable=True),
        # The sandbox channel's fault switches (migration 0009, docs/inbox.md).
        Column("sandbox_delay", Float, nullable=True),
        Column("sandbox_fail", String(16), nullable=True),
        key(),
        parent("application_id", "applications.id", ondelete="SET NULL"),
        # (provider, external_id) is unique across all tenants (a page has one owner):
        # account_routes holds it; SQLite keeps it here too.
        *([] if postgresql else [UniqueConstraint("provider", "external_id")]),
        Index("ix_accounts_tenant_id_pk", "tenant_id", "pk"),
        Index("ix_accounts_tenant_id_provider_pk", "tenant_id", "provider", "pk"),
        Index("ix_accounts_application_id", "application_id"),
    )

    # Messages and their webhooks (migration 0005, docs/messages.md). Times are epoch seconds
    # (double precision): the dispatcher compares them with its own clock, the same way on
    # both databases.
    Table(
        "messages",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        Column("uuid", String(36), nullable=False),
        tenant(),
        # The pk of its failover workflow's first message; NULL: it is the first.
        Column("root_pk", BigInteger, nullable=True),
        Column("direction", String(8), nullable=False),
        Column("channel", String(16), nullable=False),
        Column("message_type", String(16), nullable=False),
        Column("to_id", Text, nullable=False),
        Column("from_id", Text, nullable=False),
        Column("status", String(16), nullable=True),
        # Not a foreign key: a message outlives the application it was sent for.
        Column("application_id", String(100), nullable=True),
        Column("client_ref", Text, nullable=True),
        Column("webhook_url", Text, nullable=True),
        Column("workflow", Text, nullable=True),  # JSON
        Column("content", Text, nullable=False),  # JSON, as given
        Column("created_at", Float, nullable=False),
        # The account's and the customer's ids, whichever way it went (migration 0009): a
        # conversation is one range of ix_messages_conversation.
        Column("account", Text, nullable=True),
        Column("peer", Text, nullable=True),
        # When its content was removed (migration 0012, docs/messages.md "Retention"): by the
        # content retention or on demand (the Redact API); NULL: it is still there.
        Column("content_removed_at", Float, nullable=True),
        key(),
        UniqueConstraint(*tenant_keys("uuid")),
        Index("ix_messages_tenant_id_pk", "tenant_id", "pk"),
        Index("ix_messages_created_at", "created_at"),
        # The messages whose content is still there, oldest first: content removal's batches.
        Index(
            "ix_messages_content_due",
            "created_at",
            sqlite_where=CONTENT_KEPT,
            postgresql_where=CONTENT_KEPT,
        ),
        Index("ix_messages_conversation", "tenant_id", "channel", "account", "peer", "pk"),
    )

    Table(
        "message_statuses",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        Column("message_pk", Id, nullable=False),
        Column("status", String(16), nullable=False),
        Column("at", Float, nullable=False),
        Column("error", Text, nullable=True),  # JSON
        tenant(),  # migration 0007
        key(),
        parent("message_pk", "messages.pk"),
        Index("ix_message_statuses_message_pk", "message_pk"),
    )

    # The outbox. A webhook is `pending` until delivered or failed; the dispatcher claims due
    # ones (`claimed_until`, a lease) and sends the statuses of one workflow (`order_key`) in
    # pk order.
    Table(
        "webhooks",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        tenant(),
        Column("message_pk", Id, nullable=False),
        Column("order_key", BigInteger, nullable=False),
        Column("application_id", String(100), nullable=False),
        Column("kind", String(8), nullable=False),
        Column("url", Text, nullable=False),
        Column("destination", Text, nullable=False),  # scheme://host:port, its dispatcher share
        Column("body", LargeBinary, nullable=False),  # the exact bytes sent and signed
        Column("state", String(10), nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("due_at", Float, nullable=False),
        Column("first_attempt_at", Float, nullable=True),
        Column("claimed_until", Float, nullable=True),
        Column("created_at", Float, nullable=False),
        key(),
        parent("message_pk", "messages.pk"),
        # Partial: the dispatcher reads pending webhooks only, in due order, and checks each has
        # none pending before it in its workflow. Without the predicate PostgreSQL planned the
        # check against the whole (state) index, row by row: 63 s for one claim over 40,000
        # webhooks.
        Index(
            "ix_webhooks_pending_due_at", "due_at", sqlite_where=PENDING, postgresql_where=PENDING
        ),
        Index(
            "ix_webhooks_pending_order_key_pk",
            "order_key",
            "pk",
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        ),
        Index("ix_webhooks_message_pk", "message_pk"),
        # The operator's outbox (migration 0013, docs/operations.md): a tenant's webhooks newest
        # first (and, on PostgreSQL, the cascade of deleting a tenant), and the failed ones
        # (partial: a few rows; `state` is in the pending indexes' predicate already).
        Index("ix_webhooks_tenant_id_pk", "tenant_id", "pk"),
        Index("ix_webhooks_failed_pk", "pk", sqlite_where=FAILED, postgresql_where=FAILED),
    )

    # The hand-over (migration 0006): a send job per outbound message, `pending` until the
    # channel has taken it (`done`) or a revoke cancelled it (`cancelled`). Senders claim due
    # ones with a lease (`claimed_until`); `outcome_unknown` marks a job claimed again after a
    # lease ran out mid-try (the channel may have taken it). `failover` holds the rest of the
    # workflow (JSON).
    Table(
        "send_jobs",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        tenant(),
        Column("message_pk", Id, nullable=False),
        Column("state", String(10), nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("due_at", Float, nullable=False),
        Column("first_attempt_at", Float, nullable=True),
        Column("claimed_until", Float, nullable=True),
        Column("outcome_unknown", Boolean, nullable=False, server_default=false()),
        Column("provider_message_id", Text, nullable=True),
        Column("status_url", Text, nullable=True),  # where its status webhooks go
        Column("failover", Text, nullable=True),  # JSON
        Column("created_at", Float, nullable=False),
        key(),
        UniqueConstraint(*tenant_keys("message_pk")),
        parent("message_pk", "messages.pk"),
        Index(
            "ix_send_jobs_pending_due_at", "due_at", sqlite_where=PENDING, postgresql_where=PENDING
        ),
    )

    # Live channels (migration 0008, docs/providers.md): the provider's id of each message sent
    # or received through one (wamid, mid, RBM messageId), with its account (page id, phone
    # number id, agent id), customer and when the provider took it (watermarks compare with it).
    Table(
        "provider_messages",
        metadata,
        Column("channel", String(16), nullable=False),
        Column("provider_id", String(255), nullable=False),
        tenant(),
        Column("message_pk", Id, nullable=False),
        Column("account", String(100), nullable=False),
        Column("peer", String(100), nullable=False),
        Column("at", Float, nullable=False),
        PrimaryKeyConstraint(*tenant_keys("channel", "provider_id")),
        parent("message_pk", "messages.pk"),
        Index("ix_provider_messages_tenant_id", "tenant_id", "account", "peer", "at"),
        Index("ix_provider_messages_message_pk", "message_pk"),
    )
    # A callback's status for a provider id not recorded yet: applied once it is, dropped after
    # 60 s (docs/providers.md, "Callbacks").
    Table(
        "held_statuses",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        tenant(),
        Column("channel", String(16), nullable=False),
        Column("provider_id", String(255), nullable=False),
        Column("status", String(16), nullable=False),
        Column("at", Float, nullable=False),
        Column("error", Text, nullable=True),  # JSON
        Column("received_at", Float, nullable=False),
        key(),
        Index("ix_held_statuses_channel", "channel", "provider_id"),
        Index("ix_held_statuses_received_at", "received_at"),  # their expiry
    )

    Table(
        "webhook_attempts",
        metadata,
        Column("pk", Id, autoincrement=True, nullable=False),
        Column("webhook_pk", Id, nullable=False),
        Column("at", Float, nullable=False),
        Column("url", Text, nullable=False),
        Column("status_code", Integer, nullable=True),
        Column("error", Text, nullable=True),
        Column("next_attempt_at", Float, nullable=True),
        tenant(),  # migration 0007
        # What the inbox shows of it (migration 0009): the headers sent (JSON), the first 2 KiB
        # of the answer's body, and how long the answer took (seconds).
        Column("request_headers", Text, nullable=True),
        Column("answer", Text, nullable=True),
        Column("latency", Float, nullable=True),
        key(),
        parent("webhook_pk", "webhooks.pk"),
        Index("ix_webhook_attempts_webhook_pk", "webhook_pk"),
    )

    # The operators' (migration 0010, docs/operations.md): reference tables, of no tenant.
    # An admin token: its SHA-256 only, and its scopes (space separated).
    Table(
        "admin_tokens",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("name", String(64), nullable=False),
        Column("token_hash", String(64), nullable=False),
        Column("scopes", Text, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("revoked", Boolean, nullable=False, server_default="0"),
        UniqueConstraint("name"),
        UniqueConstraint("token_hash"),
    )
    # Every change an operator made (the admin API's, the CLI's): never a secret.
    Table(
        "audit_log",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("at", Float, nullable=False),
        Column("actor", String(64), nullable=False),
        Column("action", String(64), nullable=False),
        Column("tenant", String(32), nullable=True),
        Column("request_id", String(128), nullable=True),
        Column("outcome", Text, nullable=False),
        Index("ix_audit_log_at", "at"),
    )
    return metadata


metadata = _schema(postgresql=False)
postgresql_metadata = _schema(postgresql=True)


def metadata_for(dialect: str) -> MetaData:
    """The schema the migrations make on this dialect ("sqlite", "postgresql")."""
    return postgresql_metadata if dialect == "postgresql" else metadata


# The tables by name, for code that reads or writes them with SQLAlchemy (their columns are
# the same on both databases).
tenants = metadata.tables["tenants"]
applications = metadata.tables["applications"]
accounts = metadata.tables["accounts"]
messages = metadata.tables["messages"]
