"""RBM's access tokens (channels/rbm.py) against the loopback RBM fake: the service account's
key signs a jwt-bearer assertion whose `aud` is the token URL; one token serves every send until
a minute before it expires (however many sends want it at once), then a new one is fetched; a
401 from RBM drops it; a reused messageId (409 ALREADY_EXISTS) is a send that was taken."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from chatapp_accounts.channels.http import ProviderClient
from chatapp_accounts.channels.rbm import RbmChannel, RbmTokens
from chatapp_accounts.domain.models import OutboundMessage, SendJob
from chatapp_accounts.domain.providers import Refusal, SendTry, Taken
from chatapp_accounts.fakes.rbm import RbmFake


def _try(message_uuid: str, to: str = "447700900124") -> SendTry:
    message = OutboundMessage("rcs", "text", to, "agent-1", {"text": "hi"})
    job = SendJob(1, 1, message, message_uuid, message_uuid, "app", None, None, 1, 0.0, False,
                  [], 0.0)  # fmt: skip
    return SendTry(job)


def _with_rbm(body: Any, **fake_options: Any) -> Any:
    async def go() -> Any:
        fake = RbmFake(events=False, **fake_options)
        await fake.start()
        refreshed: list[str] = []
        client = ProviderClient("rbm", timeout=5.0, concurrency=16)
        tokens = RbmTokens(client, fake.token_url, fake.service_account_info(),
                           on_refresh=lambda: refreshed.append("rbm"))  # fmt: skip
        channel = RbmChannel(client, tokens, fake.base_url, 300.0)
        try:
            return await body(fake, channel, tokens, refreshed)
        finally:
            await channel.close()
            await fake.stop()

    return asyncio.run(go())


def test_one_token_for_many_sends_then_a_new_one_before_it_expires() -> None:
    async def body(fake: RbmFake, channel: RbmChannel, tokens: RbmTokens,
                   refreshed: list[str]) -> None:  # fmt: skip
        answers = await asyncio.gather(*(channel.submit(_try(f"u-{i}")) for i in range(20)))
        assert all(isinstance(a, Taken) for a in answers)
        assert fake.tokens_issued == 1 and refreshed == ["rbm"]  # one refresh for all twenty
        await asyncio.sleep(1.2)  # tokens last 61 s: replaced a minute early, so at once
        assert isinstance(await channel.submit(_try("u-late")), Taken)
        assert fake.tokens_issued == 2

    _with_rbm(body, token_expires_in=61)


def test_a_401_drops_the_token_and_a_reused_message_id_is_taken() -> None:
    async def body(fake: RbmFake, channel: RbmChannel, tokens: RbmTokens,
                   refreshed: list[str]) -> None:  # fmt: skip
        first = await channel.submit(_try("u-1"))
        assert isinstance(first, Taken) and first.provider_message_id == "u-1"
        again = await channel.submit(_try("u-1"))  # a try made again after a lost answer
        assert isinstance(again, Taken) and again.provider_message_id == "u-1"
        fake.expire_tokens()
        refused = await channel.submit(_try("u-2"))
        assert isinstance(refused, Refusal) and refused.retry  # tried again, with a new token
        assert isinstance(await channel.submit(_try("u-2")), Taken)
        assert fake.tokens_issued == 2
        gone = await channel.submit(_try("u-3", to="447700900404"))
        assert isinstance(gone, Refusal) and not gone.retry and gone.code == "1300"

    _with_rbm(body)


def test_the_assertion_is_what_google_expects() -> None:
    async def body(fake: RbmFake, channel: RbmChannel, tokens: RbmTokens,
                   refreshed: list[str]) -> None:  # fmt: skip
        import jwt

        assertion = tokens.assertion(time.time())
        claims = jwt.decode(assertion, options={"verify_signature": False})
        assert claims["aud"] == fake.token_url
        assert claims["scope"] == "https://www.googleapis.com/auth/rcsbusinessmessaging"
        assert claims["iss"] == fake.service_account_info()["client_email"]
        assert claims["exp"] - claims["iat"] == 3600
        assert jwt.get_unverified_header(assertion)["alg"] == "RS256"

    _with_rbm(body)
