"""The sandbox channel, every account's default: nothing leaves the machine. A message is
`submitted`, then `delivered` to a simulated customer (who may read it later, through the
sandbox API). Reserved recipients make failures testable, as payment sandboxes' test cards do
(RESERVED_RECIPIENTS, the one table of them):

- a `to` ending in 0001 ends `undeliverable` (error 1260, "Destination unreachable");
- a `to` ending in 0002 ends `rejected` (error 1282, "Message rejected by provider");
- a `to` ending in 0003 stays `submitted` (it is never delivered: an RCS message to it can be
  revoked).

An account's fault switches (domain/sandbox.py), read with the send (SenderCredentials.faults),
apply to every send from it: `fail` ends it as the reserved recipient of that ending does,
whatever its `to`; `delay` is waited (the event loop free) before the channel takes it, so its
statuses and their webhooks come that much later.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import msgspec

from ..domain import rules
from ..domain.models import NO_FAULTS, MessageRecord, StatusChange
from ..domain.payloads import error_title, provider_error
from ..domain.providers import Refusal, SenderCredentials, SendTry, Taken


class ReservedRecipient(msgspec.Struct, frozen=True):
    """A `to` ending in `suffix` ends `status`, with Vonage's error `code` and its `title`
    and the sandbox's own `detail` (no code: it ends without an error)."""

    suffix: str
    status: str
    code: str | None = None
    title: str | None = None
    detail: str | None = None


def _failing(suffix: str, status: str, code: str, detail: str) -> ReservedRecipient:
    return ReservedRecipient(suffix, status, code, error_title(code), detail)


_UNREACHABLE = "The message could not be delivered to the phone number."
RESERVED_RECIPIENTS: Final[tuple[ReservedRecipient, ...]] = (
    _failing("0001", "undeliverable", "1260", _UNREACHABLE),
    _failing("0002", "rejected", "1282", "The provider blocked the message."),
    ReservedRecipient("0003", "submitted"),
)
# What a `fail` switch forces: the ending of the reserved recipient that ends so.
FORCED: Final = {r.status: r for r in RESERVED_RECIPIENTS if r.code is not None}


def reserved_recipients() -> list[dict[str, str | None]]:
    """The table as data (the web inbox lists it): suffix, status, code, title, detail."""
    return [msgspec.structs.asdict(r) for r in RESERVED_RECIPIENTS]


def _reserved(to: str) -> ReservedRecipient | None:
    for recipient in RESERVED_RECIPIENTS:
        if to.endswith(recipient.suffix):
            return recipient
    return None


class SandboxChannel:
    rate: float | None = None  # a simulated customer keeps up with anything
    live: bool = False
    # The longest `delay` waited: below the senders' timeout (a delay stored under a longer
    # timeout is cut to it).
    delay_max: float = rules.SANDBOX_DELAY_CAP

    def __init__(self, delay_max: float | None = None) -> None:
        if delay_max is not None:
            self.delay_max = delay_max

    async def submit(self, send: SendTry) -> Taken:
        faults = send.credentials.faults if send.credentials is not None else NO_FAULTS
        if faults.delay > 0:
            await asyncio.sleep(min(faults.delay, self.delay_max))
        return Taken(self.statuses(send.job.message.to, send.job.message_uuid, faults.fail))

    @staticmethod
    def statuses(to: str, message_uuid: str, fail: str | None = None) -> list[StatusChange]:
        """What becomes of a message to `to`: a reserved recipient's ending, or the one its
        account's `fail` switch forces; else submitted, then delivered."""
        now = time.time()
        ending = FORCED[fail] if fail is not None else _reserved(to)
        submitted = StatusChange("submitted", now)
        if ending is None:
            return [submitted, StatusChange("delivered", now)]
        error = None
        if ending.code is not None and ending.detail is not None:
            error = provider_error(ending.code, ending.detail, message_uuid)
        if ending.status == "rejected":  # refused: never submitted
            return [StatusChange("rejected", now, error)]
        if ending.status == "submitted":
            return [submitted]
        return [submitted, StatusChange(ending.status, now, error)]

    async def revoke(self, message: MessageRecord, credentials: SenderCredentials | None,
                     ) -> Refusal | None:  # fmt: skip
        """Nothing left the machine: nothing to take back."""
        return None

    async def mark_read(self, message: MessageRecord, provider_id: str,
                        credentials: SenderCredentials | None) -> Refusal | None:  # fmt: skip
        return None

    async def close(self) -> None:
        """Nothing to let go of."""
