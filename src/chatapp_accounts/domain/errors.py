"""What can go wrong, in the domain's words. The API layer maps each to an answer, once."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    detail: str = ""

    def __init__(self, detail: str | None = None) -> None:
        if detail is not None:
            self.detail = detail
        super().__init__(self.detail)


@dataclass(frozen=True, slots=True)
class InvalidParam:
    name: str
    reason: str


class InvalidInput(DomainError):
    """The request breaks the schema: one entry per bad field."""

    def __init__(self, params: list[InvalidParam]) -> None:
        self.params = params
        super().__init__(f"Found errors validating {len(params)} of your submitted parameters.")

    @classmethod
    def one(cls, name: str, reason: str) -> InvalidInput:
        return cls([InvalidParam(name, reason)])


class NotAuthenticated(DomainError):
    detail = "Request header 'Authorization' missing / Invalid Token"


class AccessDenied(DomainError):
    """Authenticated, but the token's `acl` does not cover this request."""

    detail = "The token's acl does not allow this path"


class AccountNotFound(DomainError):
    detail = "Account not found"


class AccountAlreadyRegistered(DomainError):
    """Creating an account whose (provider, external_id) is taken."""


class PhoneNumberIdTaken(AccountAlreadyRegistered):
    """A WhatsApp Cloud API phone_number_id already belongs to another number."""

    def __init__(self, phone_number_id: str) -> None:
        super().__init__(f"The phone_number_id '{phone_number_id}' belongs to another account")


class CannotLink(DomainError):
    detail = "Cannot link application"


class LinkConflict(DomainError):
    detail = "Unable to link application"


class CannotUnlink(DomainError):
    detail = "Cannot unlink application"


class UnlinkConflict(DomainError):
    detail = "Unable to unlink application"


class ApplicationNotFound(DomainError):
    def __init__(self, application_id: str) -> None:
        super().__init__(f"ID '{application_id}' does not exist, or you do not have access")


class ServiceUnavailable(DomainError):
    """The data store cannot be reached. Nothing was changed; the client may retry."""

    detail = "The database cannot be reached; try again shortly"


class Throttled(DomainError):
    """A request refused, nothing done: past the tenant's `limit` per second on its API
    (docs/limits.md), or a send while more accepted work is due than the server can send now
    (back-pressure, `backlog`). The client may retry after `retry_after` seconds; nothing is
    left (`remaining`) until `reset_at` (seconds since the epoch)."""

    detail = (
        "Throttled - You have exceeded the submission capacity allowed on this account. "
        "Please wait and retry"
    )

    def __init__(
        self, retry_after: float, limit: int, reset_at: float, *, backlog: bool = False
    ) -> None:
        super().__init__()
        self.retry_after = retry_after
        self.limit = limit
        self.reset_at = reset_at
        self.remaining = 0
        self.backlog = backlog  # refused for the backlog, not for the tenant's limit


class TenantNotFound(DomainError):
    def __init__(self, api_key: str) -> None:
        super().__init__(f"no tenant with api_key {api_key!r}")


class TenantSuspended(TenantNotFound):
    """An operator's change to the accounts of a suspended tenant: resume it first."""

    def __init__(self, api_key: str) -> None:
        DomainError.__init__(
            self, f"the tenant with api_key {api_key!r} is suspended: resume it first"
        )


class AdminTokenNotFound(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no admin token named {name!r}")


class AdminTokenExists(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an admin token named {name!r} exists")


# The Messages API's 422s (docs/messages.md): one class per error of its spec.
class MessageRejected(DomainError):
    """A send (or an update, or a sandbox call) the Messages API answers 422."""

    params: list[InvalidParam] | None = None

    def __init__(self, detail: str | None = None, params: list[InvalidParam] | None = None) -> None:
        self.params = params
        super().__init__(detail)


class InvalidJson(MessageRejected):
    detail = "The request body did not contain valid JSON"


class UnsupportedChannel(MessageRejected):
    detail = "The specified channel is not supported."


class InvalidChannelParams(MessageRejected):
    detail = "The value of one or more parameters is invalid."


class InvalidSender(MessageRejected):
    detail = "The `from` parameter is invalid for the given channel."


class InvalidRecipient(MessageRejected):
    detail = "The `to` parameter is invalid for the given channel."


class InvalidMessageType(MessageRejected):
    detail = "The message type specified in the request is not supported for the given channel."


class InvalidMessageParams(MessageRejected):
    detail = "The value of one or more parameters is invalid."


class InvalidClientRef(MessageRejected):
    detail = "The client reference can be a string of up to 100 characters."


class MessageNotFound(DomainError):
    detail = "The message was not found, or you do not have access to it"


class WebhookNotFound(DomainError):
    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"no webhook with id {webhook_id!r}")


class ContentRemoved(DomainError):
    """The webhook's message had its content removed (retention or redaction): there is
    nothing left to send again."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(
            f"webhook {webhook_id}: its message's content was removed (retention or redaction); "
            "it cannot be sent again"
        )


# The Redact API's errors (docs/messages.md, "Redaction"), as Vonage answers them.
class RedactInvalid(DomainError):
    """422: a missing or invalid `id`, `product` or `type`."""

    def __init__(self, name: str, reason: str) -> None:
        self.params = [InvalidParam(name, reason)]
        super().__init__(f"Invalid {name}: {reason}")


class RedactUnsupportedProduct(DomainError):
    """403: a product of Vonage's other than Messages (this server keeps only messages)."""

    def __init__(self, product: str) -> None:
        super().__init__(f"Unsupported product: {product!r} (this server redacts 'messages')")


class RedactNotFound(DomainError):
    detail = "No message found with that ID"


class RedactPremature(DomainError):
    """403: the message is still queued (its channel has not taken it): redacted once sent."""

    detail = "The message is still queued for sending; redact it once it has been sent"
