"""The Slack app end to end: signed HTTP requests into the real slack-bolt app, answers to a fake Slack.

The app is served by its own HTTP component (a threaded WSGI server on 127.0.0.1); its Web API
client and every ``response_url`` point at ``tests.fakes.slack_api.FakeSlack``. The core is the
real conversation on the demo records (Tue 2 Jun 2026, 18:00 in Berlin).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk.signature import SignatureVerifier

from adapters.slack.app import SlackAdapter
from adapters.slack.component import SlackComponent
from adapters.slack.delivery import SlackTarget
from adapters.slack.render import action_of
from adapters.slack.users import ManagerPolicy
from bot.config import Settings
from bot.conversation import Conversation
from bot.deliverer import Deliverer
from bot.demo import seed_demo
from bot.outbox import Outbox, Planned, RowKind
from bot.sources import SourceBook
from bot.subscriptions import Subscriptions
from retrieval.store import RecordStore
from tests.conftest import needs_model
from tests.fakes.slack_api import Call, FakeSlack

pytestmark = needs_model

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)
SECRET = "8f2b" + secrets.token_hex(12)
TOKEN = "xoxb-1234-5678-" + secrets.token_hex(10)
ADMIN, ANALYST, TOKYO = "UADMIN1", "UANALYST1", "UTOKYO1"


class SlackRig:
    """A fake Slack, the app served over HTTP, and helpers to send what Slack sends."""

    def __init__(self, fake: FakeSlack, component: SlackComponent, store: RecordStore) -> None:
        self.fake = fake
        self.component = component
        self.adapter = component.adapter
        self.store = store
        self._events = 0

    # -- sending -----------------------------------------------------------------------------------

    def send(
        self,
        body: bytes,
        content_type: str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, float]:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        request = urllib.request.Request(
            self.component.url,
            data=body,
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature,
                **(headers or {}),
            },
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read(), (time.perf_counter() - started) * 1000
        except urllib.error.HTTPError as error:
            return error.code, error.read(), (time.perf_counter() - started) * 1000

    def command(self, text: str, *, user: str = ADMIN, channel: str = "C1", **kwargs) -> tuple[int, float, str]:
        """``/threat text``; returns (HTTP status, ms to the ack, the response_url's name)."""
        name = f"cmd-{secrets.token_hex(4)}"
        body = urllib.parse.urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": self.fake.team_id,
                "channel_id": channel,
                "channel_name": "security",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/threat",
                "text": text,
                "api_app_id": "AFAKE",
                "response_url": self.fake.response_url(name),
                "trigger_id": "1.2.3",
            }
        ).encode()
        status, _, ms = self.send(body, "application/x-www-form-urlencoded", **kwargs)
        return status, ms, name

    def event(self, event: dict, *, event_id: str | None = None, **kwargs) -> tuple[int, bytes, float]:
        """Send an Events API callback — only if Slack would: message events come from member conversations."""
        if event.get("channel") and not self.fake.delivers_events_from(event["channel"]):
            return 0, b"", 0.0  # Slack never sends it
        self._events += 1
        body = {
            "token": "legacy-verification-token",
            "team_id": self.fake.team_id,
            "api_app_id": "AFAKE",
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "event": {"event_ts": event.get("ts", ""), **event},
        }
        return self.send(json.dumps(body).encode(), "application/json", **kwargs)

    def click(
        self,
        action_id: str,
        value: str,
        *,
        channel: str,
        user: str = ADMIN,
        ephemeral: bool = False,
        message_ts: str = "",
        thread_ts: str | None = None,
        option: bool = False,
    ) -> tuple[int, str]:
        name = f"act-{secrets.token_hex(4)}"
        action = {"action_id": action_id, "block_id": "b1", "type": "button", "action_ts": str(time.time())}
        if option:
            action.update(
                type="overflow", selected_option={"text": {"type": "plain_text", "text": "x"}, "value": value}
            )
        else:
            action["value"] = value
        container = {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": ephemeral}
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.fake.team_id},
            "api_app_id": "AFAKE",
            "token": "legacy-verification-token",
            "container": container,
            "trigger_id": "1.2.3",
            "team": {"id": self.fake.team_id, "domain": "fake"},
            "channel": {"id": channel, "name": "security"},
            "response_url": self.fake.response_url(name),
            "actions": [action],
        }
        if not ephemeral:
            payload["message"] = {
                "type": "message",
                "ts": message_ts,
                "text": "",
                **({"thread_ts": thread_ts} if thread_ts else {}),
            }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        status, _, _ = self.send(body, "application/x-www-form-urlencoded")
        return status, name

    # -- waiting -----------------------------------------------------------------------------------

    def response(self, name: str, count: int = 1) -> Call:
        return self.fake.wait_for("response_url", count=count, where=lambda c: c.path.endswith("/" + name))

    def posted(self, channel: str, count: int = 1, **match) -> Call:
        def where(call: Call) -> bool:
            return call.params.get("channel") == channel and all(call.params.get(k) == v for k, v in match.items())

        return self.fake.wait_for("chat.postMessage", count=count, where=where)

    def posts_in(self, channel: str) -> list[Call]:
        return [c for c in self.fake.calls_to("chat.postMessage") if c.params.get("channel") == channel]


def card_of(call: Call, action: str, index: int = 0) -> str:
    """The value of the ``index``-th button with ``action`` in a posted message."""
    values = [
        element["value"]
        for block in call.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action or action_of(element["action_id"]) == action
    ]
    return values[index]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slack")
    store = RecordStore(Settings.from_env(folder))
    seed_demo(store, NOW)
    store.close()
    return folder


def _rig(data_dir: Path, fake: FakeSlack, conversation_class=Conversation, workers: int = 4):
    store = RecordStore(Settings.from_env(data_dir))
    conversation = conversation_class(
        store, subscriptions=Subscriptions(store.db), sources=SourceBook(store.db), feed_posts=Outbox(store.db)
    )
    adapter = SlackAdapter(
        conversation,
        bot_token=TOKEN,
        signing_secret=SECRET,
        api_url=fake.api_url,
        managers=ManagerPolicy("admins"),
        workers=workers,
        clock=lambda: NOW,
    )
    component = SlackComponent(adapter, mode="http", host="127.0.0.1", port=0)
    component.start()
    return SlackRig(fake, component, store)


@pytest.fixture(scope="module")
def fake():
    with FakeSlack(token=TOKEN) as slack:
        slack.users[ADMIN] = {"tz": "Europe/Berlin", "is_admin": True, "real_name": "Ana Admin"}
        slack.users[ANALYST] = {"tz": "Europe/Berlin", "is_admin": False}
        slack.users[TOKYO] = {"tz": "Asia/Tokyo"}
        yield slack


@pytest.fixture(scope="module")
def rig(data_dir, fake):
    before = len(fake.refusals)
    rig = _rig(data_dir, fake)
    yield rig
    rig.adapter.wait_idle()
    rig.component.stop()
    rig.store.close()
    # Whatever the test did, Slack accepted every message the app built (Block Kit rules, text size).
    refused = [(c.method, a) for c, a in fake.refusals[before:] if a.get("error") in BAD_PAYLOAD]
    assert refused == [], refused


#: Refusals that mean the app built a message Slack does not accept: never acceptable.
BAD_PAYLOAD = {"invalid_blocks", "msg_too_long", "invalid_blocks_format"}


# -- /threat ----------------------------------------------------------------------------------------


def test_search_is_private_and_shared_to_the_channel_where_follow_ups_keep_its_context(rig) -> None:
    status, ms, name = rig.command("search exchange outage", channel="C1")
    assert status == 200 and ms < 1000
    answer = rig.response(name)
    assert answer.params["response_type"] == "ephemeral"
    text = answer.all_text()
    assert "Microsoft Exchange Online outage causes email delays, failures" in text
    assert "3 h ago · Tue 2 Jun 15:00 CEST" in text  # the asker's zone, from users.info
    assert rig.posts_in("C1") == []  # nothing public yet
    share = card_of(answer, "tb_share")

    status, clicked = rig.click("tb_share", share, channel="C1", ephemeral=True)
    assert status == 200
    shared = rig.posted("C1")
    assert "Microsoft Exchange Online outage causes email delays" in shared.all_text()
    assert f"Shared by <@{ADMIN}>" in shared.all_text()
    assert "<!date^" in shared.all_text()  # the channel sees times in each viewer's own zone
    assert not any(e["action_id"] == "tb_share" for b in shared.blocks if b["type"] == "actions" for e in b["elements"])
    assert rig.response(clicked).params.get("delete_original") is True

    # Someone answers in the shared message's thread, without a mention: the list is the context.
    ts = rig.fake.channels["C1"][-1]["ts"]
    rig.event(
        {
            "type": "message",
            "user": ANALYST,
            "text": "which countries are affected?",
            "ts": "1780000001.000200",
            "thread_ts": ts,
            "channel": "C1",
            "channel_type": "channel",
        }
    )
    reply = rig.posted("C1", count=2)
    assert reply.params["thread_ts"] == ts
    assert "United States, Canada, Germany" in reply.text


def test_latest_show_and_help(rig) -> None:
    _, _, name = rig.command("latest 3", channel="C2")
    latest = rig.response(name)
    assert latest.params["response_type"] == "ephemeral"
    assert (
        len([b for b in latest.blocks if b["type"] == "actions" and b["elements"][0]["action_id"] == "tb_details"]) == 3
    )

    record_id = next(iter(rig.store.find_by_prefix("tb:", limit=1))).id
    _, _, name = rig.command(f"show {record_id}", channel="C2")
    shown = rig.response(name)
    assert shown.blocks[0]["type"] == "header"
    assert record_id in shown.all_text()

    _, _, name = rig.command("help", channel="C2")
    assert "search &lt;query&gt;" in rig.response(name).text  # escaped for mrkdwn
    _, _, name = rig.command("serch fortinet", channel="C2")
    assert "did you mean `search`" in rig.response(name).text
    _, _, name = rig.command("", channel="C2")
    assert "Commands:" in rig.response(name).text
    assert rig.posts_in("C2") == []


def test_subscriptions_need_manager_rights_and_are_confirmed_in_the_channel(rig) -> None:
    _, _, name = rig.command("subscribe exploited fortinet", user=ANALYST, channel="C3")
    refused = rig.response(name)
    assert refused.params["response_type"] == "ephemeral" and "Only people who manage" in refused.text

    _, _, name = rig.command("subscribe exploited fortinet", user=ADMIN, channel="C3")
    confirmed = rig.posted("C3")
    assert "Subscribed this channel to “exploited fortinet”" in confirmed.text
    assert f"<@{ADMIN}> asked: /threat subscribe exploited fortinet" in confirmed.all_text()
    subs = Subscriptions(rig.store.db).subscriptions(platform="slack", channel="C3")
    assert [s.query for s in subs] == ["exploited fortinet"] and subs[0].created_by == ADMIN

    rig.command("subscriptions", user=ANALYST, channel="C3")
    listing = rig.posted("C3", count=2)
    assert subs[0].id in listing.text

    rig.command(f"unsubscribe {subs[0].id}", user=ADMIN, channel="C3")
    assert f"Unsubscribed `{subs[0].id}`" in rig.posted("C3", count=3).text
    assert Subscriptions(rig.store.db).subscriptions(platform="slack", channel="C3") == []


def test_a_channel_the_bot_cannot_post_in_gets_the_answer_through_the_response_url(rig) -> None:
    rig.fake.closed_channels.add("C4")
    _, _, name = rig.command("subscriptions", channel="C4")
    answer = rig.response(name)
    assert answer.params["response_type"] == "in_channel" and "no subscriptions" in answer.text
    assert "invite me (`/invite @threatbot`)" in answer.all_text()


def test_sources_list_and_add_rights(rig) -> None:
    _, _, name = rig.command("sources add https://feeds.example.org/rss", user=ANALYST, channel="C5")
    assert "Only people who manage" in rig.response(name).text
    rig.command("sources", channel="C5")
    listing = rig.posted("C5")
    assert listing.text.startswith(("Sources (", "No feed sources"))


# -- mentions, threads, DMs ---------------------------------------------------------------------------


def test_a_mention_is_answered_in_its_thread_and_the_thread_needs_no_further_mention(rig) -> None:
    top = "1780000100.000100"
    rig.event(
        {
            "type": "app_mention",
            "user": ANALYST,
            "text": "<@UBOT> any Exchange outages today?",
            "ts": top,
            "channel": "C6",
            "channel_type": "channel",
        }
    )
    first = rig.posted("C6")
    assert first.params["thread_ts"] == top
    assert "Today (Tue 2 Jun, Europe/Berlin): 1 Exchange outage" in first.text

    rig.event(
        {
            "type": "message",
            "user": ANALYST,
            "text": "what's the mitigation?",
            "ts": "1780000100.000200",
            "thread_ts": top,
            "channel": "C6",
            "channel_type": "channel",
        }
    )
    second = rig.posted("C6", count=2)
    assert second.params["thread_ts"] == top and "Mitigation for *Microsoft Exchange Online outage" in second.text

    # Not for the bot: a message naming someone else, a top-level message, a thread it never answered.
    for event in (
        {"text": "<@UOTHER1> can you check our tenant?", "ts": "1780000100.000300", "thread_ts": top},
        {"text": "any Exchange outages today?", "ts": "1780000100.000400"},
        {"text": "any Exchange outages today?", "ts": "1780000100.000600", "thread_ts": "1780000000.000500"},
    ):
        rig.event({"type": "message", "user": ANALYST, "channel": "C6", "channel_type": "channel", **event})
    rig.fake.quiet(0.5)
    assert len(rig.posts_in("C6")) == 2


def test_direct_messages_are_one_running_conversation_in_the_askers_zone(rig) -> None:
    rig.event(
        {
            "type": "message",
            "user": TOKYO,
            "text": "any Exchange outages today?",
            "ts": "1780000200.000100",
            "channel": "D7",
            "channel_type": "im",
        }
    )
    first = rig.posted("D7")
    assert "thread_ts" not in first.params
    # 01:00 on Wednesday in Tokyo: today has no outage yet, and the last one is named in Tokyo's time.
    assert first.text.startswith("No Exchange outages today (Wed 3 Jun, Asia/Tokyo).")
    assert "Tue 2 Jun 22:20" in first.text
    rig.event(
        {
            "type": "message",
            "user": TOKYO,
            "text": "what about yesterday?",
            "ts": "1780000200.000200",
            "channel": "D7",
            "channel_type": "im",
        }
    )
    second = rig.posted("D7", count=2)
    assert "Yesterday (Tue 2 Jun, Asia/Tokyo)" in second.text and "Exchange" in second.text


def test_repeated_events_and_double_deliveries_are_answered_once(rig) -> None:
    event = {
        "type": "app_mention",
        "user": ANALYST,
        "text": "<@UBOT> latest 2",
        "ts": "1780000300.000100",
        "channel": "C8",
        "channel_type": "channel",
    }
    assert rig.event(event, event_id="EvSAME1")[0] == 200
    assert (
        rig.event(
            event, event_id="EvSAME1", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        )[0]
        == 200
    )
    # The same message as a `message` event (another event id) that also mentions the bot.
    rig.event({**event, "type": "message"}, event_id="EvOTHER2")
    rig.posted("C8")
    # An event id already processed is dropped before anything looks at the event.
    rig.event({**event, "ts": "1780000300.000999"}, event_id="EvSAME1", headers={"X-Slack-Retry-Num": "2"})
    rig.fake.quiet(0.5)
    assert len(rig.posts_in("C8")) == 1


def test_other_bots_edits_and_joins_are_ignored(rig) -> None:
    for event in (
        {"subtype": "bot_message", "bot_id": "B2", "text": "any outages?"},
        {"subtype": "message_changed", "message": {"text": "x"}},
        {"subtype": "channel_join", "user": ANALYST, "text": "joined"},
    ):
        rig.event(
            {"type": "message", "ts": f"1780000400.{len(event):06d}", "channel": "D9", "channel_type": "im", **event}
        )
    rig.fake.quiet(0.5)
    assert rig.posts_in("D9") == []


# -- buttons ------------------------------------------------------------------------------------------


def test_details_expands_in_place_and_votes_are_stored_with_the_question(rig) -> None:
    _, _, name = rig.command("search exchange outage", user=ANALYST, channel="C10")
    answer = rig.response(name)
    details = card_of(answer, "tb_details", 0)
    _, clicked = rig.click("tb_details", details, channel="C10", user=ANALYST, ephemeral=True)
    expanded = rig.response(clicked)
    assert expanded.params.get("replace_original") is True
    assert "*Impact:* Delayed or failed sending" in expanded.all_text()
    assert "*Mitigation:* Remediation is in Microsoft" in expanded.all_text()

    vote = card_of(answer, "tb_vote_up", 1)
    _, thanks = rig.click("tb_vote_up", vote, channel="C10", user=ANALYST, ephemeral=True)
    assert "Thanks — noted 👍" in rig.response(thanks).text
    _, again = rig.click("tb_item_menu", "n|" + vote, channel="C10", user=ANALYST, ephemeral=True, option=True)
    rig.response(again)
    votes = [v for v in rig.adapter.store.feedback() if v["user_id"] == ANALYST]
    assert len(votes) == 1 and votes[0]["vote"] == -1  # the second click changed the vote
    assert votes[0]["query"] == "search exchange outage" and votes[0]["channel"] == "C10"
    card_id = vote.split(":")[0]
    assert votes[0]["record_id"] == rig.adapter.store.card(card_id).reply.items[1].record.id


def test_details_and_suggestions_on_a_channel_message_answer_in_its_thread(rig) -> None:
    top = "1780000500.000100"
    rig.event(
        {
            "type": "app_mention",
            "user": ADMIN,
            "text": "<@UBOT> any ransomware attacks this week?",
            "ts": top,
            "channel": "C11",
            "channel_type": "channel",
        }
    )
    first = rig.posted("C11")
    message_ts = rig.fake.channels["C11"][-1]["ts"]
    rig.click("tb_details", card_of(first, "tb_details", 0), channel="C11", message_ts=message_ts, thread_ts=top)
    detail = rig.posted("C11", count=2)
    assert detail.params["thread_ts"] == top and detail.blocks[0]["type"] == "header"
    suggestion = card_of(detail, "tb_suggest", 0)  # "what's the mitigation?"
    rig.click("tb_suggest_0", suggestion, channel="C11", message_ts=rig.fake.channels["C11"][-1]["ts"], thread_ts=top)
    mitigation = rig.posted("C11", count=3)
    assert mitigation.params["thread_ts"] == top
    assert detail.blocks[0]["text"]["text"] in mitigation.text  # about the story the details showed


def test_a_feed_posts_thread_starts_from_its_incident(rig) -> None:
    headline = next(
        r for r in rig.store.iter_records() if r.title.startswith("Microsoft Exchange Online outage causes")
    )
    # Queued and delivered as serve does: the core learns which incident the post's thread is about.
    outbox = Outbox(rig.store.db)
    key = f"post:slack:C17:{headline.cluster_id}"
    payload = {"cluster_id": headline.cluster_id, "record_ids": [headline.id], "subscriptions": ["exchange outage"]}
    outbox.commit_plan([Planned(RowKind.POST, "slack", "C17", key, payload, cluster_ids=(headline.cluster_id,))], [])
    target = SlackTarget(rig.adapter.client, rig.adapter.store, clock=lambda: NOW)
    assert Deliverer(outbox, rig.store, [target]).drain().sent == 1
    ref = next(c.ref for c in outbox.claims([headline.cluster_id]) if c.channel == "C17")
    assert ref is not None
    feed = rig.posted("C17")
    assert "3 sources" in feed.all_text()

    rig.event(
        {
            "type": "app_mention",
            "user": ANALYST,
            "text": "<@UBOT> what's the mitigation?",
            "ts": "1780001000.000200",
            "thread_ts": ref.message_id,
            "channel": "C17",
            "channel_type": "channel",
        }
    )
    answer = rig.posted("C17", count=2)
    assert answer.params["thread_ts"] == ref.message_id
    assert "Mitigation for *Microsoft Exchange Online outage causes email delays" in answer.text

    _, clicked = rig.click(
        "tb_vote_up", card_of(feed, "tb_vote_up"), channel="C17", user=ANALYST, message_ts=ref.message_id
    )
    assert "noted 👍" in rig.response(clicked).text
    vote = next(v for v in rig.adapter.store.feedback() if v["channel"] == "C17")
    assert vote["query"] == "exchange outage" and vote["record_id"] == headline.id


def test_a_stale_button_says_so(rig) -> None:
    _, name = rig.click("tb_details", "0123456789ab:0", channel="C12", ephemeral=True)
    assert "too old" in rig.response(name).text


# -- safety ---------------------------------------------------------------------------------------------


def test_bad_and_stale_signatures_are_refused_and_nothing_happens(rig) -> None:
    before = len(rig.fake.calls)
    assert rig.command("latest", channel="C13", secret="not-the-secret")[0] == 401
    assert rig.command("latest", channel="C13", timestamp=int(time.time()) - 6 * 60)[0] == 401
    event = {
        "type": "app_mention",
        "user": ADMIN,
        "text": "<@UBOT> latest",
        "ts": "1780000600.000100",
        "channel": "C13",
        "channel_type": "channel",
    }
    assert rig.event(event, secret="wrong")[0] == 401
    request = urllib.request.Request(rig.component.url, data=b"command=/threat&text=latest", method="POST")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=5)
    assert unsigned.value.code == 401
    rig.fake.quiet(0.5)
    assert len(rig.fake.calls) == before


def test_no_secret_reaches_the_logs_or_slack(data_dir, fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next("users.info", error="missing_scope")
    rig = _rig(data_dir, fake)
    try:
        _, _, name = rig.command("search fortinet", user=ANALYST, channel="C14")
        rig.response(name)
        rig.event(
            {
                "type": "app_mention",
                "user": ANALYST,
                "text": "<@UBOT> latest 2",
                "ts": "1780000700.000100",
                "channel": "C14",
                "channel_type": "channel",
            }
        )
        rig.posted("C14")
        rig.command("latest", channel="C14", secret="wrong")
        rig.adapter.log.warning("a stray token %s in a message", TOKEN)  # a careless log line gets redacted too
        rig.adapter.wait_idle()
    finally:
        rig.component.stop()
        rig.store.close()
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Sending a request" in logged  # slack_sdk's debug output was captured
    assert TOKEN not in logged and SECRET not in logged and TOKEN[5:20] not in logged
    sent = json.dumps([c.params for c in fake.calls])
    assert TOKEN not in sent and SECRET not in sent


# -- acknowledgements under load ----------------------------------------------------------------------


class SlowConversation(Conversation):
    """The core, taking a second per answer (a slow LLM, a busy store)."""

    def handle(self, message):
        time.sleep(1.0)
        return super().handle(message)


def test_commands_are_acknowledged_at_once_while_answers_are_slow(data_dir, fake) -> None:
    rig = _rig(data_dir, fake, conversation_class=SlowConversation, workers=2)
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda n: rig.command(f"latest {n + 1}", channel="C15"), range(6)))
        acks = [ms for status, ms, _ in results]
        assert all(status == 200 for status, _, _ in results)
        assert max(acks) < 500, acks  # six commands, two workers, a second each: acks never wait for them
        started = time.monotonic()
        for _, _, name in results:
            assert rig.response(name).params["response_type"] == "ephemeral"
        assert time.monotonic() - started > 1.5  # the answers really were slow (three rounds of two)
    finally:
        rig.component.stop()
        rig.store.close()


def test_concurrent_threads_are_answered_independently(rig) -> None:
    barrier = threading.Barrier(4)

    def mention(n: int) -> None:
        barrier.wait()
        rig.event(
            {
                "type": "app_mention",
                "user": ADMIN,
                "text": "<@UBOT> latest 2",
                "ts": f"1780000800.00010{n}",
                "channel": "C16",
                "channel_type": "channel",
            }
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(mention, range(4)))
    rig.posted("C16", count=4)
    threads = sorted(c.params["thread_ts"] for c in rig.posts_in("C16"))
    assert threads == [f"1780000800.00010{n}" for n in range(4)]
