"""`shopchat orders event`: the same core as the API, from a shell, on the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.settings import Settings
from handoff.db.conversations import ConversationStore
from tests.conftest import run_shopchat
from tests.orders.conftest import ANNA


def test_an_event_from_the_shell_is_posted_once_in_the_customers_conversation(
        tmp_path: Path, shop_in: Any) -> None:
    settings = Settings(var_dir=tmp_path)
    shop = shop_in(settings)
    order = next(o for o in shop.orders_for_customer(ANNA, 100) if o.status == "processing")
    shop.close()
    store = ConversationStore(settings.gateway_db)
    conversation, _ = store.create_conversation(None)
    store.set_customer(conversation.id, ANNA)
    store.close()
    env = {"SHOPCHAT_VAR_DIR": str(tmp_path)}

    def shopchat(*args: str) -> tuple[int, str, str]:
        done = run_shopchat("orders", "event", *args, env=env)
        return done.returncode, done.stdout, done.stderr

    code, out, err = shopchat(order.id, "delayed", "--event-id", "cli-1", "--new-date",
                              "2027-02-01", "--note", "Sorry!", "--json")
    assert code == 0, err
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome["channel"] == "conversation" and outcome["conversation_id"] == \
        conversation.id and outcome["duplicate"] is False
    code, out, err = shopchat(order.id, "delayed", "--event-id", "cli-1", "--new-date",
                              "2027-02-01", "--note", "Sorry!")
    assert code == 0 and "sent before: nothing done now" in out, (out, err)
    code, out, err = shopchat(order.id, "delayed", "--new-date", "next week")
    assert code == 1 and "new_date" in err and "Traceback" not in err
    store = ConversationStore(settings.gateway_db)
    (update,) = [e.frame for e in store.events_after(conversation.id, 0)]
    store.close()
    assert update["seq"] == outcome["seq"] and "From the shop: Sorry!" in update["text"]
    assert "Monday 1 February" in update["text"]
