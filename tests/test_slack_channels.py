"""Slack's documented refusals, enforced by the fake, and what the app does about each: never silence.

Rules from Slack's docs (Block Kit reference, chat.postMessage, conversations.*, response_url): the
fake refuses what Slack refuses (``tests.fakes.slack_api``); these tests show the fake does, then
that every answer the app builds passes, and that each failure ends in a message the user sees.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.conversation import Conversation
from tests.conftest import needs_model
from tests.fakes.slack_api import FakeSlack, block_errors
from tests.test_slack_app import ADMIN, ANALYST, TOKEN, _rig, card_of, data_dir, fake  # noqa: F401

# -- the fake refuses what Slack documents ------------------------------------------------------------


def _button(action_id: str, text: str = "Go", value: str = "v") -> dict:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value}


def test_the_fake_refuses_every_documented_block_kit_violation() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}
    assert block_errors([section]) == []
    cases = {
        "50 blocks": [section] * 51,
        "block_id": [dict(section, block_id="a"), dict(section, block_id="a")],
        "long block_id": [dict(section, block_id="b" * 256)],
        "action_id": [{"type": "actions", "elements": [_button("tb_suggest"), _button("tb_suggest")]}],
        "long action_id": [{"type": "actions", "elements": [_button("a" * 256)]}],
        "section text": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        "fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        "field text": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        "header": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        "context": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        "button text": [{"type": "actions", "elements": [_button("a", text="t" * 76)]}],
        "button value": [{"type": "actions", "elements": [_button("a", value="v" * 2001)]}],
    }
    for name, blocks in cases.items():
        assert block_errors(blocks), name
    # The bug this issue began with: Slack's own words for it.
    [problem] = block_errors([{"type": "actions", "elements": [_button("tb_suggest"), _button("tb_suggest")]}])
    assert problem == "/blocks/0/elements/1/action_id: 'tb_suggest' already exists"
    # The same action_id in two different blocks is fine.
    assert block_errors([{"type": "actions", "elements": [_button("x")]}] * 2) == []


@pytest.fixture
def slack():
    with FakeSlack(token="xoxb-rules") as server:
        yield server, WebClient(token="xoxb-rules", base_url=server.api_url)


def _error(call) -> str:
    try:
        call()
    except SlackApiError as error:
        return error.response["error"]
    return "ok"


def test_the_fake_applies_slacks_conversation_rules(slack) -> None:
    server, client = slack
    bad = [{"type": "actions", "elements": [_button("a"), _button("a")]}]
    assert _error(lambda: client.chat_postMessage(channel="C1", text="x", blocks=bad)) == "invalid_blocks"
    assert _error(lambda: client.chat_postMessage(channel="C1", text="x" * 40_001)) == "msg_too_long"

    server.add_channel("CPUB", member=False)
    server.add_channel("GPRIV", kind="group", member=False)
    server.add_channel("COLD", archived=True)
    # chat:write.public: a public channel takes posts without the bot in it; reading it does not.
    assert _error(lambda: client.chat_postMessage(channel="CPUB", text="x")) == "ok"
    assert _error(lambda: client.conversations_history(channel="CPUB")) == "not_in_channel"
    assert _error(lambda: client.conversations_replies(channel="CPUB", ts="1.0")) == "not_in_channel"
    assert _error(lambda: client.chat_postEphemeral(channel="CPUB", user="U1", text="x")) == "not_in_channel"
    assert not server.delivers_events_from("CPUB")
    assert _error(lambda: client.chat_postMessage(channel="GPRIV", text="x")) == "channel_not_found"
    assert _error(lambda: client.conversations_history(channel="GPRIV")) == "channel_not_found"
    assert _error(lambda: client.chat_postMessage(channel="COLD", text="x")) == "is_archived"
    server.scopes.discard("chat:write.public")
    assert _error(lambda: client.chat_postMessage(channel="CPUB", text="x")) == "not_in_channel"
    # Joining: public channels only, with channels:join.
    assert _error(lambda: client.conversations_join(channel="GPRIV")) == "channel_not_found"
    assert _error(lambda: client.conversations_join(channel="CPUB")) == "ok"
    assert server.delivers_events_from("CPUB")
    assert _error(lambda: client.conversations_history(channel="CPUB")) == "ok"


def _post_json(url: str, body: dict) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_response_url_refuses_bad_blocks_and_works_five_times_in_thirty_minutes(slack) -> None:
    server, _ = slack
    url = server.response_url("r1")
    bad = [{"type": "actions", "elements": [_button("a"), _button("a")]}]
    assert _post_json(url, {"text": "x", "blocks": bad})[0] == 400
    for _ in range(4):
        assert _post_json(url, {"text": "x"})[0] == 200
    status, body = _post_json(url, {"text": "sixth"})
    assert status == 404 and "used_url" in body
    other = server.response_url("r2")
    server.response_url_ttl = 0.05
    assert _post_json(other, {"text": "x"})[0] == 200
    time.sleep(0.1)
    assert "expired_url" in _post_json(other, {"text": "x"})[1]


# -- the app: answers wherever it can, and says so where it cannot -------------------------------------


@pytest.fixture
def rig(data_dir, fake):  # noqa: F811
    before = len(fake.refusals)
    rig = _rig(data_dir, fake)
    yield rig
    rig.adapter.wait_idle()
    rig.component.stop()
    rig.store.close()
    refused = [(c.method, a) for c, a in fake.refusals[before:] if a.get("error") in {"invalid_blocks", "msg_too_long"}]
    assert refused == [], refused


@needs_model
def test_an_answer_posted_in_a_public_channel_joins_it_so_its_thread_takes_follow_ups(rig) -> None:
    rig.fake.add_channel("CJOIN", member=False)
    _, _, name = rig.command("search exchange outage", channel="CJOIN")
    _, clicked = rig.click("tb_share", card_of(rig.response(name), "tb_share"), channel="CJOIN", ephemeral=True)
    posted = rig.posted("CJOIN")
    assert rig.response(clicked).params.get("delete_original") is True  # shared, and its thread bound
    assert rig.fake.wait_for("conversations.join", where=lambda c: c.params.get("channel") == "CJOIN")
    assert rig.fake.is_member("CJOIN") and "won't see replies" not in posted.all_text()
    ts = rig.fake.channels["CJOIN"][-1]["ts"]
    status, _, _ = rig.event(
        {
            "type": "message",
            "user": ANALYST,
            "text": "which countries are affected?",
            "ts": "1780002000.000100",
            "thread_ts": ts,
            "channel": "CJOIN",
            "channel_type": "channel",
        }
    )
    assert status == 200  # Slack delivers it: the bot is in the channel now
    answer = rig.posted("CJOIN", count=2)
    assert answer.params["thread_ts"] == ts and "ountr" in answer.text


@needs_model
def test_where_the_bot_cannot_join_the_answer_says_follow_ups_need_an_invitation(rig) -> None:
    rig.fake.add_channel("CNOJOIN", member=False)
    rig.fake.scopes.discard("channels:join")
    try:
        rig.command("subscriptions", channel="CNOJOIN")
        posted = rig.posted("CNOJOIN")
    finally:
        rig.fake.scopes.add("channels:join")
    assert "won't see replies in this thread" in posted.all_text()


@needs_model
def test_a_private_channel_gets_the_answer_through_the_response_url_with_an_invitation_hint(rig) -> None:
    rig.fake.add_channel("GSECRET", kind="group", member=False)
    _, _, name = rig.command("subscriptions", channel="GSECRET")
    answer = rig.response(name)
    assert answer.params["response_type"] == "in_channel" and "no subscriptions" in answer.text
    assert "invite me (`/invite @threatbot`)" in answer.all_text()


@needs_model
def test_a_dm_between_two_people_never_gets_the_invite_notice(rig) -> None:
    rig.fake.add_channel("DPEOPLE", kind="im", member=False)
    name = "dm-cmd"
    body = {
        "token": "t",
        "team_id": rig.fake.team_id,
        "channel_id": "DPEOPLE",
        "channel_name": "directmessage",
        "user_id": ADMIN,
        "user_name": "admin",
        "command": "/threat",
        "text": "subscriptions",
        "response_url": rig.fake.response_url(name),
    }
    import urllib.parse

    rig.send(urllib.parse.urlencode(body).encode(), "application/x-www-form-urlencoded")
    answer = rig.response(name)
    assert "no subscriptions" in answer.text
    assert "invite" not in answer.all_text().lower()


@needs_model
def test_a_refused_message_still_reaches_the_asker_as_plain_text(rig) -> None:
    rig.fake.fail_next("chat.postMessage", error="invalid_blocks")
    rig.event(
        {
            "type": "app_mention",
            "user": ADMIN,
            "text": "<@UBOT> any Exchange outages today?",
            "ts": "1780002100.000100",
            "channel": "C31",
            "channel_type": "channel",
        }
    )
    again = rig.posted("C31", count=2)
    assert again.blocks == [] and "Exchange" in again.text


@needs_model
def test_an_answer_that_cannot_be_posted_is_explained_to_the_asker(rig) -> None:
    rig.fake.fail_next("chat.postMessage", error="restricted_action")
    rig.event(
        {
            "type": "app_mention",
            "user": ADMIN,
            "text": "<@UBOT> any Exchange outages today?",
            "ts": "1780002200.000100",
            "channel": "C32",
            "channel_type": "channel",
        }
    )
    note = rig.fake.wait_for("chat.postEphemeral", where=lambda c: c.params.get("channel") == "C32")
    assert note.params["user"] == ADMIN and "couldn't post my answer here" in note.text
    assert "restricted_action" in note.text and "invite" not in note.text.lower()


class SlowConversation(Conversation):
    def handle(self, message):
        time.sleep(0.6)
        return super().handle(message)


@needs_model
def test_a_slow_answer_shows_a_working_reaction_then_removes_it(data_dir, fake) -> None:  # noqa: F811
    rig = _rig(data_dir, fake, conversation_class=SlowConversation)
    rig.adapter.working_after = 0.2
    try:
        rig.event(
            {
                "type": "app_mention",
                "user": ADMIN,
                "text": "<@UBOT> any Exchange outages today?",
                "ts": "1780002300.000100",
                "channel": "C33",
                "channel_type": "channel",
            }
        )
        added = fake.wait_for("reactions.add", where=lambda c: c.params.get("channel") == "C33")
        assert added.params["timestamp"] == "1780002300.000100"
        rig.posted("C33")
        fake.wait_for("reactions.remove", where=lambda c: c.params.get("channel") == "C33")
        assert ("C33", "1780002300.000100", "hourglass_flowing_sand") not in fake.reactions

        _, _, name = rig.command("latest 2", channel="C33")
        assert "Working on it" in rig.response(name).text
        assert rig.response(name, count=2).params["response_type"] == "ephemeral"
    finally:
        rig.component.stop()
        rig.store.close()


@needs_model
def test_group_dms_take_mentions_and_thread_follow_ups(rig) -> None:
    rig.fake.add_channel("GMPIM", kind="mpim")
    rig.event(
        {
            "type": "app_mention",
            "user": ADMIN,
            "text": "<@UBOT> any Exchange outages today?",
            "ts": "1780002400.000100",
            "channel": "GMPIM",
            "channel_type": "mpim",
        }
    )
    first = rig.posted("GMPIM")
    assert first.params["thread_ts"] == "1780002400.000100"
    rig.event(
        {
            "type": "message",
            "user": ANALYST,
            "text": "only critical ones",
            "ts": "1780002400.000300",
            "thread_ts": "1780002400.000100",
            "channel": "GMPIM",
            "channel_type": "mpim",
        }
    )
    second = rig.posted("GMPIM", count=2)
    assert second.params["thread_ts"] == "1780002400.000100"
    # A top-level message in a group DM that does not mention the bot is people talking.
    rig.event(
        {
            "type": "message",
            "user": ANALYST,
            "text": "lunch?",
            "ts": "1780002400.000500",
            "channel": "GMPIM",
            "channel_type": "mpim",
        }
    )
    rig.adapter.wait_idle()
    rig.fake.quiet(0.3)
    assert len(rig.posts_in("GMPIM")) == 2


@needs_model
def test_events_from_a_channel_the_bot_is_not_in_never_arrive(rig) -> None:
    rig.fake.add_channel("COUT", member=False)
    status, _, _ = rig.event(
        {"type": "message", "user": ADMIN, "text": "hi", "ts": "1.1", "channel": "COUT", "channel_type": "channel"}
    )
    assert status == 0  # Slack would not send it; the rig refuses to pretend otherwise


@needs_model
def test_every_reply_type_passes_slacks_rules(rig) -> None:
    """help, search, latest, show, subscriptions, sources, details and share: none refused (see the fixture)."""
    for text in ("help", "search exchange outage", "latest 5", "subscriptions", "sources", "nonsense-command-x"):
        _, _, name = rig.command(text, channel="C34")
        rig.response(name) if text not in ("subscriptions", "sources") else rig.posted("C34", count=1)
    _, _, name = rig.command("search exchange outage", channel="C34")
    answer = rig.response(name)
    record_id = answer.all_text().split("id `")[1].split("`")[0]
    _, _, shown = rig.command(f"show {record_id}", channel="C34")
    rig.response(shown)
    _, clicked = rig.click("tb_details", card_of(answer, "tb_details"), channel="C34", ephemeral=True)
    assert rig.response(clicked).params.get("replace_original") is True
    _, shared = rig.click("tb_share", card_of(answer, "tb_share"), channel="C34", ephemeral=True)
    rig.response(shared)
    rig.adapter.wait_idle()


# -- feed posts: a channel that cannot receive ends disabled, its subscriber told by DM ----------------


@needs_model
def test_a_private_channel_the_bot_left_is_disabled_and_the_subscriber_gets_a_dm(tmp_path, capsys) -> None:
    from datetime import UTC, datetime

    from adapters.slack.delivery import SlackTarget
    from adapters.slack.store import SlackStore
    from bot.cli import main
    from bot.config import Settings
    from bot.deliverer import Deliverer, DeliveryPolicy
    from bot.health import ChannelHealth, ChannelState
    from bot.outbox import Outbox, Planned, RowKind
    from bot.subscriptions import Subscriptions
    from retrieval.records import ThreatRecord
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path))
    with FakeSlack(token=TOKEN) as server:
        server.add_channel("GLEFT", kind="group", member=False)
        records = [
            c.record
            for c in store.upsert(
                [
                    ThreatRecord(
                        title=f"Fortinet flaw {n}",
                        published=datetime(2025, 11, 14, 12, n, tzinfo=UTC),
                        url=f"https://example.org/{n}",
                        source="Example News",
                    )
                    for n in range(3)
                ]
            ).changes
        ]
        book = Subscriptions(store.db)
        sub = book.subscribe(platform="slack", channel="GLEFT", query="fortinet", created_by=ADMIN)
        outbox = Outbox(store.db)
        for r in records:
            payload = {"cluster_id": r.cluster_id, "record_ids": [r.id], "subscriptions": ["fortinet"]}
            key = f"post:slack:GLEFT:{r.cluster_id}"
            outbox.commit_plan([Planned(RowKind.POST, "slack", "GLEFT", key, payload, (r.cluster_id,))], [])
        client = WebClient(token=TOKEN, base_url=server.api_url)
        target = SlackTarget(client, SlackStore(store.db))
        deliverer = Deliverer(
            outbox, store, [target], policy=DeliveryPolicy(base_backoff=0, rate_limits={"slack": 0}), subscriptions=book
        )
        for _ in range(5):
            deliverer.deliver_due()
        status = ChannelHealth(store.db).get("slack", "GLEFT")
        assert status.state is ChannelState.DISABLED and status.code == "channel_not_found"
        [dm] = [c for c in server.calls_to("chat.postMessage") if c.params["channel"] == ADMIN]
        assert "stopped posting “fortinet”" in dm.all_text() and "<#GLEFT>" in dm.all_text()
        assert not [a for _, a in server.refused("invalid_blocks")]
        assert len(server.calls_to("chat.postMessage")) == 4  # three refusals, one DM: no endless retry
    store.close()

    assert main(["subscriptions", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{sub.id}  slack:GLEFT" in out and "[disabled: the channel is gone, or private" in out
    assert main(["deliveries", "--data-dir", str(tmp_path)]) == 0
    assert "channel slack:GLEFT disabled:" in capsys.readouterr().out
    assert main(["resume", sub.id, "--data-dir", str(tmp_path)]) == 0
    assert "3 waiting message(s) re-queued" in capsys.readouterr().out
    assert main(["subscriptions", "--data-dir", str(tmp_path), "--json"]) == 0
    assert '"status": "ok"' in capsys.readouterr().out


@needs_model
def test_subscribing_joins_a_public_channel_and_asks_for_an_invitation_to_a_private_one(rig) -> None:
    rig.fake.add_channel("CSUBPUB", member=False)
    rig.command("subscribe exploited fortinet", channel="CSUBPUB")
    confirmed = rig.posted("CSUBPUB")
    assert "Subscribed this channel" in confirmed.text and rig.fake.is_member("CSUBPUB")

    rig.fake.add_channel("GSUBPRIV", kind="group", member=False)
    _, _, name = rig.command("subscribe exploited fortinet", channel="GSUBPRIV")
    refused = rig.response(name)
    assert refused.params["response_type"] == "ephemeral" and "Invite me first" in refused.text
    from bot.subscriptions import Subscriptions

    assert Subscriptions(rig.store.db).subscriptions(platform="slack", channel="GSUBPRIV") == []


@needs_model
def test_an_answer_whose_response_url_expired_still_reaches_the_asker(rig) -> None:
    rig.fake.response_url_ttl = -1.0  # every response_url is past its 30 minutes
    try:
        rig.command("search exchange outage", channel="C35")
        note = rig.fake.wait_for("chat.postEphemeral", where=lambda c: c.params.get("channel") == "C35")
    finally:
        rig.fake.response_url_ttl = 30 * 60.0
    assert note.params["user"] == ADMIN and "Exchange" in note.all_text()
