"""Kinds that overlap, subjects versus mentions, and word weights from the store's document frequencies."""

from __future__ import annotations

import dataclasses

import pytest

from retrieval.aboutness import COMMON_SHARE, TermWeights, kind_fits, kinds_overlap, only_mentioned, related_kinds
from retrieval.records import Kind
from retrieval.vendors import VendorDictionary


def test_kinds_read_from_words_admit_their_related_kinds() -> None:
    assert Kind.VULNERABILITY in related_kinds([Kind.ADVISORY])  # CSAF advisories are stored as vulnerabilities
    assert Kind.BREACH in related_kinds([Kind.RANSOMWARE])  # a ransomware attack is also a breach
    assert Kind.MALWARE not in related_kinds([Kind.OUTAGE])


@pytest.mark.parametrize(
    ("kind", "asked", "text", "fits"),
    [
        (Kind.VULNERABILITY, [Kind.ADVISORY], "ICSA-24-100-01 Acme PLC", True),
        (Kind.OTHER, [Kind.RANSOMWARE], "City council confirms cyberattack disrupted services", True),
        (Kind.OTHER, [Kind.RANSOMWARE], "Hospital chain investigates data theft and extortion demand", True),
        (Kind.OTHER, [Kind.RANSOMWARE], "Quarterly earnings beat expectations", False),
        (Kind.MALWARE, [Kind.OUTAGE], "Botnet used the outage to spread", False),  # a specific, unrelated kind
        (Kind.OTHER, [Kind.OUTAGE], "Service disruption hits payments", True),
    ],
)
def test_kind_fits(kind: Kind, asked: list[Kind], text: str, fits: bool) -> None:
    assert kind_fits(kind, asked, text) is fits


@pytest.mark.parametrize(
    ("kind", "asked", "overlap"),
    [
        (Kind.VULNERABILITY, [Kind.RANSOMWARE], True),  # the exploited flaw behind a ransomware wave
        (Kind.MALWARE, [Kind.BREACH], True),
        (Kind.OTHER, [Kind.OUTAGE], True),  # nobody could file it: it may be anything
        (Kind.OUTAGE, [Kind.VULNERABILITY], False),  # an outage is no security event, whatever caused it
        (Kind.MALWARE, [Kind.OUTAGE], False),
    ],
)
def test_security_events_overlap_and_outages_do_not(kind: Kind, asked: list[Kind], overlap: bool) -> None:
    assert kinds_overlap(kind, asked) is overlap


@pytest.mark.parametrize(
    ("title", "mention"),
    [
        ("Record 7 Tbps DDoS attack stopped by Cloudflare", True),
        ("Botnet used the Cloudflare outage to hide its traffic", True),
        ("Malware delivered via Chrome, Telegram and Teams updates", True),
        ("Cloudflare outage takes down websites", False),
        ("Incident with blocked GitHub.com traffic", False),  # what was blocked is the story ("stopped by X" says by)
        ("Chrome zero-day exploited in attacks", False),
        ("Researchers detail new ransomware strain", False),  # names nothing: not judged here
    ],
)
def test_a_story_that_mentions_a_service_is_not_about_it(title: str, mention: bool) -> None:
    names = {"cloudflare", "google", "chrome", "github"}
    assert only_mentioned(title, names, VendorDictionary.default()) is mention


def test_rare_words_weigh_more_and_common_words_do_not_count() -> None:
    total = 10_000
    weights = TermWeights.from_frequencies(
        {"coupang": 3, "wrong": 150, "reported": int(total * COMMON_SHARE) + 1}, total
    )
    assert weights.common(["coupang", "wrong", "reported"]) == {"reported"}
    assert weights.informative(["coupang", "wrong", "reported"]) == ["coupang", "wrong"]
    # the rare name alone carries most of the question; the ordinary word alone does not
    assert weights.coverage(["coupang", "wrong"], ["coupang"]) > 0.5
    assert weights.coverage(["coupang", "wrong"], ["wrong"]) < 0.5
    assert weights.coverage(["reported"], []) == 1.0  # nothing informative: words do not gate
    small = TermWeights.from_frequencies({"outage": 3}, 20)  # in a tiny store no word is common
    assert small.informative(["outage"]) == ["outage"]


def test_alternatives_count_once_and_any_one_covers_them() -> None:
    """ "rosemount / ovation": a record about either product says what the question asks for."""
    weights = TermWeights.from_frequencies({"emerson": 40, "rosemount": 5, "ovation": 8}, 30_000)
    plain = weights.coverage(["emerson", "rosemount", "ovation"], ["emerson", "rosemount"])
    grouped = dataclasses.replace(weights, alternatives=[["rosemount", "ovation"]])
    assert plain < 0.7
    assert grouped.coverage(["emerson", "rosemount", "ovation"], ["emerson", "rosemount"]) == 1.0
    assert grouped.coverage(["emerson", "rosemount", "ovation"], ["emerson", "ovation"]) == 1.0
    assert grouped.coverage(["emerson", "rosemount", "ovation"], ["emerson"]) < 0.5


def test_an_alternative_phrase_is_covered_only_when_every_word_is_said() -> None:
    """ "square / cash app": "Tornado Cash" says "cash" but not "cash app"."""
    weights = TermWeights.from_frequencies({"square": 30, "cash": 60, "app": 2_000}, 30_000)
    grouped = dataclasses.replace(weights, alternatives=[["square", "cash app"]])
    assert grouped.coverage(["square", "cash"], ["cash"]) == 0.0
    assert grouped.coverage(["square", "cash"], ["cash", "app"]) == 1.0


def test_a_common_word_does_not_cover_its_alternatives() -> None:
    """ "what does the cisa/nsa thing say": every KEV entry says "CISA", so saying it covers nothing."""
    weights = TermWeights.from_frequencies({"brickstorm": 20, "cisa": 9_000, "nsa": 120}, 30_000)
    grouped = dataclasses.replace(weights, alternatives=[["cisa", "nsa"]])
    assert grouped.coverage(["brickstorm", "nsa"], ["cisa"]) == 0.0
    assert grouped.coverage(["brickstorm", "nsa"], ["nsa"]) > 0.0
