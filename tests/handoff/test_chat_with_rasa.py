"""/ws/chat in front of the real Rasa and action server: what they decide behind the socket
(their two-strike fallback, a signed-in shopper greeted by name from Rasa's slot). The
socket's own behaviour is tested on the scripted stand-in in test_chat_socket.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import bot_texts
from tests.handoff.test_chat_socket import (
    bad_identities_are_ignored,
    recorded_customer,
    two_misses_then_the_offered_person,
)

pytestmark = pytest.mark.stack


async def test_two_misses_offer_a_person_and_the_button_hands_off(chat: Any) -> None:
    # The real NLU reading both as misses, action_fallback offering a person after the
    # second, action_handoff naming the fallback as the trigger.
    await two_misses_then_the_offered_person(chat)


async def test_only_a_genuinely_signed_identity_is_recorded(
    chat: Any, gateway: Any, stack: Any,
) -> None:
    from bot.identity import sign_identity
    from bot.store.factory import open_store
    from tests.conftest import IDENTITY_SECRET

    def customer(conversation_id: str | None) -> str | None:
        return recorded_customer(gateway, conversation_id)

    def first_name(customer_id: str) -> str:
        store = open_store(stack.settings)  # the action server's shop
        found = store.get_customer(customer_id)
        assert found is not None
        return found.first_name

    async with chat() as client:
        await bad_identities_are_ignored(client, gateway)
        # Signing in mid-chat: the identity frame.
        await client.send({"type": "identity", "token": sign_identity("cus_0002",
                                                                      IDENTITY_SECRET)})
        greeting = bot_texts(await client.turn("hello again"))
        assert customer(client.conversation_id) == "cus_0002"
        # The bot knows them from this turn on (the gateway set Rasa's customer_id slot).
        assert greeting[0].startswith(f"Hi {first_name('cus_0002')}!")
    async with chat() as client:
        await client.hello(identity=sign_identity("cus_0001", IDENTITY_SECRET))
        assert customer(client.conversation_id) == "cus_0001"
        # Known from the first message of a brand-new conversation too.
        greeting = bot_texts(await client.turn("hi"))
        assert greeting[0].startswith(f"Hi {first_name('cus_0001')}!")
