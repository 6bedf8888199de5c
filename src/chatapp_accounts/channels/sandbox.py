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

from ..domain.models import OutboundMessage, StatusChange
from ..domain.payloads import status_error

UNDELIVERABLE = (
    "1260",
    "Destination unreachable - The message could not be delivered to the phone number.",
)
REJECTED = ("1282", "Message rejected by provider - The provider blocked the message.")


class SandboxChannel:
    async def submit(self, message: OutboundMessage, message_uuid: str) -> list[StatusChange]:
        now = time.time()
        to = message.to
        if to.endswith("0002"):
            return [StatusChange("rejected", now, status_error(*REJECTED, message_uuid))]
        submitted = StatusChange("submitted", now)
        if to.endswith("0001"):
            return [
                submitted,
                StatusChange("undeliverable", now, status_error(*UNDELIVERABLE, message_uuid)),
            ]
        if to.endswith("0003"):
            return [submitted]
        return [submitted, StatusChange("delivered", now)]

    async def close(self) -> None:
        """Nothing to let go of."""
