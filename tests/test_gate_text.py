"""The gate's texts of a record: made once per parsed record, made anew when the record is parsed anew."""

from __future__ import annotations

from datetime import UTC, datetime

from retrieval.aboutness import kind_fits
from retrieval.gate_text import GateTexts
from retrieval.records import Kind, ThreatRecord


def _record(title: str, summary: str = "", kind: Kind = Kind.OTHER) -> ThreatRecord:
    return ThreatRecord(
        id="r1",
        title=title,
        summary=summary,
        kind=kind,
        source="Example News",
        published=datetime(2025, 11, 3, tzinfo=UTC),
    )


def test_texts_are_kept_while_the_record_is_the_same_object() -> None:
    texts = GateTexts(size=10)
    record = _record("Condé Nast confirms breach", "Hawai'i subscribers affected")
    first = texts.of(record)
    assert texts.of(record) is first
    assert first.folded == "conde nast confirms breach\nhawaii subscribers affected\nexample news\n"
    # The store parses a record anew when its stored text changed: another object, other texts.
    changed = record.model_copy(update={"title": "Condé Nast denies breach"})
    assert texts.of(changed) is not first
    assert texts.of(changed).folded.startswith("conde nast denies breach")


def test_the_least_recently_used_are_dropped() -> None:
    texts = GateTexts(size=2)
    records = [_record(f"story {n}").model_copy(update={"id": f"r{n}"}) for n in range(3)]
    kept = [texts.of(r) for r in records]
    assert texts.of(records[2]) is kept[2]
    assert texts.of(records[0]) is not kept[0]  # dropped when the third came in


def test_the_kind_judgement_is_the_aboutness_rule_whatever_the_order_of_kinds() -> None:
    texts = GateTexts()
    for record in [
        _record("City council confirms CYBERATTACK disrupted services"),
        _record("Quarterly earnings beat expectations"),
        _record("Botnet used the outage to spread", kind=Kind.MALWARE),
        _record("Platform shut down after ransomware attack", kind=Kind.OUTAGE),
    ]:
        text = texts.of(record)
        for asked in ([Kind.RANSOMWARE], [Kind.OUTAGE, Kind.BREACH], [Kind.BREACH, Kind.OUTAGE]):
            assert text.kind_fits(asked) is kind_fits(record.kind, asked, text.words)
