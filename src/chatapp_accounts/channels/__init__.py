"""Where accounts send: each channel is one module behind the domain's `Channel` port, and the
registry says which one each message channel uses (today the sandbox for all of them)."""

from __future__ import annotations

from ..domain.ports import Channel
from .sandbox import SandboxChannel


class ChannelRegistry:
    """The channel of each message channel (messenger, whatsapp, viber_service, rcs)."""

    def __init__(self, channels: dict[str, Channel], default: Channel) -> None:
        self._channels = channels
        self._default = default

    def get(self, channel: str) -> Channel:
        return self._channels.get(channel, self._default)

    async def close(self) -> None:
        for channel in {id(c): c for c in [*self._channels.values(), self._default]}.values():
            await channel.close()


def sandbox_channels() -> ChannelRegistry:
    return ChannelRegistry({}, SandboxChannel())
