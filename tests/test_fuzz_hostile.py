"""Fuzzing every input format, the ingest path and search (issue 14), with bounded, derandomized examples.

Three promises are checked on random bytes, random JSON, real feeds and records with random damage,
and mangled questions: no traceback (only :class:`FormatError` for unreadable input, a clear
``QuestionTooLong`` for an over-long question), every source gets a verdict, and no stored record
is ever lost. Examples are few and derandomized so the run is short and repeatable in CI; raise
``THREATBOT_FUZZ_EXAMPLES`` for a longer hunt by hand.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from retrieval.formats import FormatError, ParsedSource, parse_source  # noqa: E402
from tests.conftest import FIXTURES  # noqa: E402
from tests.test_hostile_input import HashEmbedder  # noqa: E402

SCALE = int(os.environ.get("THREATBOT_FUZZ_EXAMPLES", "1"))
NOW = datetime.now(UTC)


def fuzz(examples: int):
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
        database=None,
    )


#: Fragments that broke threatbot before issue 14, spliced into otherwise good input.
HOSTILE = [
    b"&#xD800;",
    b"&#0;",
    b"\\ud800",
    b"\xff\xfe",
    b"\x00",
    b"\x1b[2J",
    "\u202e".encode(),
    b"9999-12-31T23:59:59-14:00",
    b"0001-01-01",
    b"Fri, 31 Dec 9999 23:59:59 -0100",
    b"2026-13-45T99:99:99Z",
    b"[" * 5000,
    b'{"a":' * 3000,
    b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>",
    b"]]>",
    b"<![CDATA[",
    b'"cves": "CVE-2024-1234"',
]


def _good_records() -> bytes:
    lines = [
        {"title": f"Story {n}", "published": (NOW - timedelta(days=n)).isoformat(), "url": f"https://n.example/{n}"}
        for n in range(8)
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def _seeds() -> list[bytes]:
    """Real inputs of every format (small slices of ../shared), plus generated canonical JSON and JSONL."""
    seeds = [_good_records(), b"[" + _good_records().replace(b"\n", b",") + b"]"]
    if FIXTURES.is_dir():
        for name in ("bleepingcomputer.xml", "crowdstrike.xml", "proofpoint.xml", "securityweek.xml"):
            seeds.append((FIXTURES / "feeds" / name).read_bytes())
        seeds.append((FIXTURES / "feeds" / "githubstatus_2025-10-22_18c1255.atom").read_bytes()[:20000])
        kev = json.loads(next((FIXTURES / "kev").glob("kev_2025-01-27_*.json")).read_text())
        kev["vulnerabilities"] = kev["vulnerabilities"][:15]
        seeds.append(json.dumps(kev).encode())
        posts = json.loads((FIXTURES / "ransomware" / "ransomwatch_posts_2024-04-23.json").read_text())[:15]
        seeds.append(json.dumps(posts).encode())
        with (FIXTURES / "corpus-2025" / "corpus.jsonl").open("rb") as corpus:
            seeds.append(b"".join(next(corpus) for _ in range(10)))
    return seeds


SEEDS = _seeds()


@st.composite
def damaged(draw) -> bytes:
    """A real input with a few random edits: flipped bytes, cuts, hostile fragments, re-encodings."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "splice", "drop", "encode"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        elif action == "splice":
            data[at:at] = draw(st.sampled_from(HOSTILE))
        elif action == "drop":
            del data[at : at + draw(st.integers(1, 200))]
        elif action == "encode":
            text = bytes(data).decode("utf-8", errors="replace")
            data = bytearray(
                text.encode(draw(st.sampled_from(["utf-16-le", "utf-16-be", "utf-32", "latin-1"])), "replace")
            )
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
record_like = st.fixed_dictionaries(
    {"title": st.text(max_size=40)},
    optional={
        "published": st.one_of(st.text(max_size=30), st.integers(), st.sampled_from(["9999-12-31", "0001-01-01"])),
        "cves": st.one_of(st.text(max_size=30), st.lists(json_values, max_size=3)),
        "tags": json_values,
        "severity": json_values,
        "kind": json_values,
        "url": st.text(max_size=40),
    },
)


def _parses_cleanly(content: bytes) -> ParsedSource | None:
    try:
        parsed = parse_source(content, origin="fuzz")
    except FormatError as error:
        assert str(error).startswith("fuzz"), error  # the message names its origin
        return None
    for record in parsed.records:
        record.text_for_embedding().encode("utf-8")  # what SQLite and the tokenizer get must be encodable
        record.model_dump_json()
    return parsed


@fuzz(60)
@given(st.binary(max_size=2000))
def test_random_bytes_are_parsed_or_refused_cleanly(content: bytes) -> None:
    _parses_cleanly(content)


@fuzz(40)
@given(json_values | st.lists(record_like, max_size=6) | record_like)
def test_random_json_is_parsed_or_refused_cleanly(value) -> None:
    _parses_cleanly(json.dumps(value).encode())
    _parses_cleanly(b"\n".join(json.dumps(v).encode() for v in (value if isinstance(value, list) else [value])))


@fuzz(60)
@given(damaged())
def test_damaged_real_inputs_are_parsed_or_refused_cleanly(content: bytes) -> None:
    _parses_cleanly(content)


# -- ingest: verdicts and nothing lost ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    from bot.config import Settings
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path_factory.mktemp("fuzz") / "data"), embedder=HashEmbedder())
    path = tmp_path_factory.mktemp("fuzz-seed") / "seed.jsonl"
    path.write_bytes(_good_records())
    from retrieval.ingest import Ingestor

    assert Ingestor(store).ingest(str(path)).new == 8
    yield store
    store.close()


@fuzz(12)
@given(st.lists(damaged() | st.binary(max_size=500), min_size=1, max_size=3))
def test_ingest_gives_every_source_a_verdict_and_loses_nothing(fuzz_store, tmp_path_factory, contents) -> None:
    from retrieval.ingest import Ingestor

    before = {r.id for r in fuzz_store.iter_records()}
    folder = tmp_path_factory.mktemp("inputs")
    paths = []
    for number, content in enumerate(contents):
        path = Path(folder, f"source-{number}")
        path.write_bytes(content)
        paths.append(str(path))
    reports = Ingestor(fuzz_store).ingest_many(paths)
    assert [r.source for r in reports] == paths  # a verdict for every source, in order
    for report in reports:
        assert report.ok or report.error.strip()
        assert "unexpected" not in (report.error or ""), report.error  # no bug reached the catch-all
    after = {r.id for r in fuzz_store.iter_records()}
    assert before <= after
    assert fuzz_store.db.query("SELECT count(*) FROM vectors")[0][0] == len(after)


# -- search: mangled questions --------------------------------------------------------------------------

QUESTIONS = [
    "any Exchange outages today?",
    "ransomware attacks on hospitals in the last 2 weeks -lockbit",
    "critical exploited CVE-2024-3400 since Monday",
    'what happened "last night" in Europe/Berlin',
]


@st.composite
def mangled_question(draw) -> str:
    text = draw(st.sampled_from(QUESTIONS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        piece = draw(
            st.sampled_from(
                [
                    "-" + draw(st.text(min_size=1, max_size=8)),
                    " last 99999999999999 days ",
                    " 99999999 days ago ",
                    " in Q5 2024 ",
                    " on 2026-02-30 ",
                    " since 0001-01-01 ",
                    ' "unterminated ',
                    " \ud800 ",
                    " \x1b[2J ",
                    " -x" * 500,
                    draw(st.text(max_size=50)),
                ]
            )
        )
        text = text[:at] + piece + text[at:]
    return text


@fuzz(40)
@given(mangled_question(), st.sampled_from(["UTC", "Pacific/Kiritimati", "America/St_Johns"]))
def test_mangled_questions_get_answers_or_a_clear_refusal(fuzz_store, question: str, tz: str) -> None:
    from retrieval.query import QuestionTooLong
    from retrieval.search import Searcher

    try:
        response = Searcher(fuzz_store).search(question, now=NOW, tz=tz, limit=5)
    except QuestionTooLong as error:
        assert "characters long" in str(error)
        return
    json.dumps(response.to_json())
