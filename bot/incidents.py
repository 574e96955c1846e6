"""Incident semantics, once for every platform: an incident's severity, its reports, and its feed posts.

An *incident* is a cluster of records (``ThreatRecord.cluster_id``) that report the same event; one
of them is the headline a channel was shown. Slack, Discord and the console must tell the same story
about it, so the rules live here:

* **Severity and exploitation: the worst any report states.** A news story that says "high" and the
  CISA KEV entry for the same CVE that says "critical, exploited" make a critical, exploited
  incident. Reports only ever add evidence; a calmer later report does not downgrade what another
  source established (the delivery planner already announces only rising changes).
* **Its other reports** are the cluster's members other than the headline, oldest first.
* **Feed-post threads.** A thread under the message a feed post became is about that post's
  incident (:class:`FeedPostIndex`); a digest's thread is about several, so about none in particular.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.messages import ThreadKey
from retrieval.records import Severity, ThreatRecord

__all__ = ["FeedPostIndex", "IncidentFacts", "incident_facts", "other_reports"]


@dataclass(frozen=True)
class IncidentFacts:
    """What an incident's headline shows: the worst severity and whether any report says exploited."""

    severity: Severity
    exploited: bool


def incident_facts(records: Iterable[ThreatRecord]) -> IncidentFacts:
    """The incident's facts from all its reports (see the module docstring for the rule)."""
    severity, exploited = Severity.UNKNOWN, False
    for record in records:
        if record.severity.rank > severity.rank:
            severity = record.severity
        exploited = exploited or record.exploited
    return IncidentFacts(severity, exploited)


def other_reports(headline: ThreatRecord, members: Iterable[ThreatRecord]) -> list[ThreatRecord]:
    """The incident's reports other than ``headline``, in the order given (oldest first from the store)."""
    return [m for m in members if m.id != headline.id]


class FeedPostIndex(Protocol):
    """Which incident a feed post's thread is about (``bot.outbox.Outbox`` implements it)."""

    def incident_at(self, key: ThreadKey) -> str | None:
        """The headline record id of the feed post whose thread ``key`` is, or None."""
        ...
