"""The stack in chat, on the CLI and in feed posts, over real KEV and CSAF fixture records."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from bot.cli import main
from bot.config import Settings
from bot.conversation import Conversation
from bot.deliverer import Deliverer
from bot.delivery.base import IncidentPost
from bot.messages import IncomingMessage, ReplyKind
from bot.outbox import Outbox
from bot.subscriptions import StandingQueryMatcher, Subscriptions
from retrieval.ingest import Ingestor
from retrieval.store import RecordStore
from tests.conftest import FIXTURES, needs_fixtures, needs_model

pytestmark = [needs_fixtures, needs_model]

KEV_CVES = ("CVE-2024-3400", "CVE-2021-44228", "CVE-2023-27997", "CVE-2024-21762")
#: The day CISA added CVE-2024-3400 (PAN-OS GlobalProtect) to KEV.
NOW = datetime(2024, 4, 12, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack-chat")
    catalog = json.loads((FIXTURES / "kev" / "known_exploited_vulnerabilities.json").read_text())
    catalog["vulnerabilities"] = [v for v in catalog["vulnerabilities"] if v["cveID"] in KEV_CVES]
    catalog["count"] = len(catalog["vulnerabilities"])
    kev = folder / "kev-slice.json"
    kev.write_text(json.dumps(catalog))
    store = RecordStore(Settings.from_env(folder / "data"))
    ingestor = Ingestor(store)
    for source in (kev, FIXTURES / "csaf" / "icsa-24-207-01.json"):
        assert ingestor.ingest(str(source)).ok
    store.close()
    return folder / "data"


@pytest.fixture
def core(data_dir):
    store = RecordStore(Settings.from_env(data_dir))
    conversation = Conversation(store)
    yield conversation
    for scope in ("default", "slack:T1", "slack:T2"):
        for entry in conversation.stack.entries(scope):
            conversation.stack.remove(scope, entry.id)
    store.close()


def ask(core, text, *, platform="console", workspace="", now=NOW, thread=""):
    return core.handle(
        IncomingMessage(
            text, platform=platform, channel="C1", workspace=workspace, can_manage=True, now=now, thread_id=thread
        )
    )


def test_stack_commands_in_chat(core):
    assert "Fortinet FortiOS 7.2.5" in ask(core, "stack add FortiGate 7.2.5").text
    refused = ask(core, "stack add Fortigat 7.2")
    assert "not a vendor or product I know" in refused.text and "Fortinet" in refused.text
    listing = ask(core, "stack").text
    assert "Fortinet FortiOS 7.2.5" in listing and "Fortigat" not in listing
    entry_id = core.stack.entries("default")[0].id
    assert "Removed" in ask(core, f"stack remove {entry_id}").text
    assert core.stack.entries("default") == []
    not_manager = core.handle(IncomingMessage("stack add FortiOS 7.2.5", channel="C1", now=NOW))
    assert "Only people who manage" in not_manager.text


def test_the_three_questions(core):
    ask(core, "stack add PAN-OS 10.2.8")
    ask(core, "stack add Siemens CPCI85 V5.30")

    kev = ask(core, "what in our stack is in KEV?")
    assert kev.kind is ReplyKind.ANSWER
    assert [i.record.id for i in kev.items] == ["kev:CVE-2024-3400"]
    assert "⚠ affects your stack: Palo Alto Networks PAN-OS 10.2.8 (possibly)" in kev.text

    exposed = ask(core, "are we exposed to CVE-2024-3400?")
    assert exposed.text.startswith("Possibly — CVE-2024-3400 touches your stack")
    not_exposed = ask(core, "are we exposed to CVE-2023-27997?")
    assert not_exposed.text.startswith("No — none of the 1 record(s) about CVE-2023-27997")
    assert "FortiOS" in not_exposed.text

    today = ask(core, "does anything today affect us?")
    assert [i.record.id for i in today.items] == ["kev:CVE-2024-3400"]
    assert today.text.startswith("Today")
    july = ask(core, "does anything affect us this month?", now=datetime(2024, 7, 30, 12, tzinfo=UTC))
    assert [i.record.id for i in july.items] == ["csaf:ICSA-24-207-01"]
    assert "⚠ affects your stack: Siemens CPCI85 V5.30 (fixed in V5.40)" in july.text
    # Follow-ups work on the list.
    detail = ask(
        core,
        "tell me more about the first one",
        now=datetime(2024, 7, 30, 12, tzinfo=UTC),
        thread=july.thread_key.thread,
    )
    assert detail.kind is ReplyKind.RECORD and detail.text.startswith("⚠ affects your stack")


def test_every_answer_marks_stories_that_touch_the_stack(core):
    ask(core, "stack add PAN-OS 10.2.8")
    answer = ask(core, "search pan-os globalprotect")
    marked = [i for i in answer.items if i.stack_note]
    assert marked and marked[0].record.id == "kev:CVE-2024-3400"
    assert marked[0].record.summary.startswith("⚠ affects your stack")  # what Slack/Discord cards show
    assert "   ⚠ affects your stack: Palo Alto Networks PAN-OS 10.2.8 (possibly)" in answer.text
    # "Are we affected?" in the thread of a story is about that story.
    first = ask(core, "show kev:CVE-2024-3400")
    focused = ask(core, "are we affected?", thread=first.thread_key.thread)
    assert focused.kind is ReplyKind.FIELD and focused.focus.id == "kev:CVE-2024-3400"
    assert "Palo Alto Networks PAN-OS 10.2.8: possibly affected — KEV CVE-2024-3400 names" in focused.text
    # Another workspace has another stack: no marks there.
    other = ask(core, "search pan-os globalprotect", platform="slack", workspace="T2")
    assert not any(i.stack_note for i in other.items)


def test_workspaces_keep_separate_stacks(core):
    ask(core, "stack add FortiOS 7.2.5", platform="slack", workspace="T1")
    assert core.stack.entries("slack:T1") and core.stack.entries("default") == []
    assert "No stack is declared" in ask(core, "what in our stack is in KEV?", platform="slack", workspace="T2").text


def test_subscribe_my_stack_posts_only_what_touches_the_stack(core, data_dir):
    book = Subscriptions(core.store.db)
    core.subscriptions = book
    try:
        ask(core, "stack add PAN-OS 10.2.8", platform="slack", workspace="T1")
        reply = ask(core, "subscribe my-stack exploited", platform="slack", workspace="T1")
        assert "Subscribed" in reply.text, reply.text
        (sub,) = book.subscriptions(platform="slack", channel="C1")
        assert sub.query == "my-stack exploited"
        records = [r for r in core.store.iter_records() if r.source == "CISA KEV"]
        since = time.time() + 1
        matches = StandingQueryMatcher(core.store).match(
            [sub.__class__(**{**sub.__dict__, "created_at": datetime.fromtimestamp(since - 10, UTC)})],
            records,
            arrived={r.id: since for r in records},
        )
        assert {i for m in matches for i in m.record_ids} == {"kev:CVE-2024-3400"}
    finally:
        for sub in book.subscriptions(platform="slack", channel="C1"):
            book.remove(sub.id)
        core.subscriptions = None


def test_feed_posts_carry_the_mark_in_the_neutral_payload(core):
    ask(core, "stack add Siemens CPCI85 V5.30")
    record = core.store.get("csaf:ICSA-24-207-01")
    deliverer = Deliverer(Outbox(core.store.db), core.store, [])
    post = IncidentPost("k", record.id, record, (record,), platform="console")
    marked = deliverer._with_stack(post, "C1")
    assert marked.stack == "⚠ affects your stack: Siemens CPCI85 V5.30 (fixed in V5.40)"
    assert marked.record.summary.startswith(marked.stack)
    assert marked.to_json()["stack"] == marked.stack
    # A Slack channel whose workspace has no stack gets the post unchanged.
    assert deliverer._with_stack(
        IncidentPost("k", record.id, record, (record,), platform="slack"), "C9"
    ) == IncidentPost("k", record.id, record, (record,), platform="slack")


def test_search_json_carries_stack_verdicts_only_with_a_stack(data_dir, capsys):
    assert (
        main(["search", "pan-os globalprotect", "--json", "--data-dir", str(data_dir), "--now", NOW.isoformat()]) == 0
    )
    without = json.loads(capsys.readouterr().out)
    assert without["results"] and all("stack" not in r for r in without["results"])
    assert main(["stack", "add", "PAN-OS", "10.2.8", "--data-dir", str(data_dir), "--scope", "cli"]) == 0
    capsys.readouterr()
    args = ["search", "pan-os globalprotect", "--json", "--data-dir", str(data_dir), "--now", NOW.isoformat()]
    assert main([*args, "--scope", "cli"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert all(isinstance(r["stack"], list) for r in results)
    pan = next(r for r in results if r["id"] == "kev:CVE-2024-3400")
    assert pan["stack"] == [
        {
            "entry": "Palo Alto Networks PAN-OS 10.2.8",
            "status": "possibly_affected",
            "why": "KEV CVE-2024-3400 names Palo Alto Networks PAN-OS but states no affected versions",
        }
    ]
    assert any(r["stack"] == [] for r in results) or len(results) == 1
    assert main(["stack", "report", "--json", "--data-dir", str(data_dir), "--scope", "cli"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [k["id"] for k in report["kev"]] == ["kev:CVE-2024-3400"]
