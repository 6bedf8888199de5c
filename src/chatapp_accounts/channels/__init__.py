"""Where accounts send: each channel is one module behind the domain's `Channel` port, and the
registry says which one each message channel uses: the sandbox (the default), or a live provider
(docs/providers.md): Meta's Graph API for Messenger and WhatsApp (graph.py), Google's RBM for
RCS (rbm.py), as the settings' modes say."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings, service_account
from ..domain import rules
from ..domain.ports import Channel
from .graph import GraphChannel
from .http import OnCall, ProviderClient
from .rbm import RbmChannel, RbmTokens
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


def channels_for(
    settings: Settings,
    on_call: OnCall | None = None,
    on_token: Callable[[str], None] | None = None,
) -> ChannelRegistry:
    """The channels the settings ask for: live ones where a mode is `live`, the sandbox for
    the rest (its fault switches' delays kept below the provider timeout). Clients open their
    connections on first use."""
    live = settings.live_channels
    channels: dict[str, Channel] = {}
    timeout, concurrency = settings.provider_timeout_seconds, settings.send_concurrency
    if live & {"messenger", "whatsapp"}:
        graph = ProviderClient("meta", timeout=timeout, concurrency=concurrency, on_call=on_call)
        rates = {"messenger": settings.messenger_rate, "whatsapp": settings.whatsapp_rate}
        for name in sorted(live & {"messenger", "whatsapp"}):
            channels[name] = GraphChannel(name, graph, settings.meta_graph_url, rates[name])
    if "rcs" in live:
        client = ProviderClient("rbm", timeout=timeout, concurrency=concurrency, on_call=on_call)
        tokens = RbmTokens(
            client,
            settings.rbm_token_url,
            service_account(settings.rbm_service_account_file),
            on_refresh=(lambda: on_token("rbm")) if on_token is not None else None,
        )
        channels["rcs"] = RbmChannel(client, tokens, settings.rbm_url, settings.rcs_rate)
    return ChannelRegistry(channels, SandboxChannel(rules.sandbox_delay_max(timeout)))
