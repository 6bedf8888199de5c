"""The sandbox channel, every account's default: nothing leaves the machine. A message is
`submitted`, then `delivered` to a simulated customer (who may read it later, through the
sandbox API). Reserved recipients make failures testable, as payment sandboxes' test cards do:

- a `to` ending in 0001 ends `undeliverable` (error 1260, "Destination unreachable");
- a `to` ending in 0002 ends `rejected` (error 1282, "Message rejected by provider");
- a `to` ending in 0003 stays `submitted` (it is never delivered: an RCS message to it can be
  revoked).
"""

from __future__ import annotations

import time

from ..domain.models import MessageRecord, StatusChange
from ..domain.payloads import provider_error
from ..domain.providers import Refusal, SenderCredentials, SendTry, Taken

UNDELIVERABLE = ("1260", "The message could not be delivered to the phone number.")
REJECTED = ("1282", "The provider blocked the message.")


class SandboxChannel:
    rate: float | None = None  # a simulated customer keeps up with anything
    live: bool = False

    async def submit(self, send: SendTry) -> Taken:
        return Taken(self.statuses(send.job.message.to, send.job.message_uuid))

    @staticmethod
    def statuses(to: str, message_uuid: str) -> list[StatusChange]:
        now = time.time()
        if to.endswith("0002"):
            return [StatusChange("rejected", now, provider_error(*REJECTED, message_uuid))]
        submitted = StatusChange("submitted", now)
        if to.endswith("0001"):
            return [
                submitted,
                StatusChange("undeliverable", now, provider_error(*UNDELIVERABLE, message_uuid)),
            ]
        if to.endswith("0003"):
            return [submitted]
        return [submitted, StatusChange("delivered", now)]

    async def revoke(self, message: MessageRecord, credentials: SenderCredentials | None,
                     ) -> Refusal | None:  # fmt: skip
        """Nothing left the machine: nothing to take back."""
        return None

    async def mark_read(self, message: MessageRecord, provider_id: str,
                        credentials: SenderCredentials | None) -> Refusal | None:  # fmt: skip
        return None

    async def close(self) -> None:
        """Nothing to let go of."""
