"""Optional LLM-written answers, grounded in the retrieved records and checked before they are sent.

Why the care: the records are third-party text (feeds, scraped pages) and may carry prompt
injection. So the model sees only the records — each fenced in ``<record id="…">`` with its text
escaped so it cannot close the fence — and the thread; never settings, tokens or environment.
Its reply must cite record ids, and every citation and every URL in it must come from the
records given; otherwise, or on an error or a timeout, the caller sends the extractive answer.

The model is any langchain chat model, built with ``init_chat_model`` from ``THREATBOT_LLM``:
``openai:gpt-4o-mini``, ``anthropic:claude-…``, ``ollama:llama3.1``, or an OpenAI-compatible base
URL (``http://127.0.0.1:8080/v1``) with ``THREATBOT_LLM_MODEL`` naming the model. Provider
packages are optional extras, imported only when configured.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from tld import get_tld

from bot import metrics
from bot.errors import ConfigError
from prompts import load_prompt, render_prompt
from retrieval.records import ThreatRecord, canonical_url

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from bot.threads import Turn

log = logging.getLogger(__name__)

#: The pip extra (``threatbot[extra]``) that installs each provider's langchain package.
PROVIDER_EXTRAS = {"openai": "openai", "azure_openai": "openai", "anthropic": "anthropic", "ollama": "ollama"}
#: How much of a record's text the model sees: enough to answer, bounded so prompts stay small.
SUMMARY_CHARS = 1200
BODY_CHARS = 1500
MAX_RECORDS = 8

_CITATION = re.compile(r"\[([^\[\]\n]{1,300})\](?!\()")
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`|]+", re.IGNORECASE)
#: Things that look like credentials: a reply containing one is never sent, whatever the records say.
_SECRET_LIKE = re.compile(
    r"\bxox[abposr]-[\w-]{8,}|\bxapp-[\w-]{8,}|\bsk-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}|"
    r"\b[MN][A-Za-z\d_-]{23,25}\.[\w-]{6}\.[\w-]{27,}"
)


class LLMUnavailable(ConfigError, RuntimeError):
    """The configured model cannot be built (missing extra, unknown provider, incomplete settings)."""


def build_chat_model(
    spec: str,
    *,
    model: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> BaseChatModel:
    """A langchain chat model for ``THREATBOT_LLM``; raises :class:`LLMUnavailable` with the fix.

    ``timeout`` and ``max_retries`` reach the provider's client, so a call the answerer has given up on
    (it sends the extractive answer after its own deadline) stops retrying in the background too.
    """
    from langchain.chat_models import init_chat_model

    from bot.config import env_value

    spec = spec.strip()
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    if max_retries is not None:
        kwargs["max_retries"] = max_retries
    if spec.lower().startswith(("http://", "https://")):
        name = (model or "").strip()
        if not name:
            raise LLMUnavailable(
                f"THREATBOT_LLM is a base URL ({spec}); set THREATBOT_LLM_MODEL to the model name that server serves"
            )
        provider = "openai"
        kwargs |= {
            "model_provider": "openai",
            "base_url": spec,
            # Local OpenAI-compatible servers usually need no key, but the client insists on one.
            "api_key": api_key or env_value("OPENAI_API_KEY") or "none",
        }
    else:
        name = spec
        provider = spec.split(":", 1)[0].lower() if ":" in spec else ""
        if model:
            name = f"{provider}:{model}" if provider else model
        if api_key:
            kwargs["api_key"] = api_key
    try:
        return init_chat_model(name, **kwargs)
    except ImportError as error:
        extra = PROVIDER_EXTRAS.get(provider)
        fix = f"pip install 'threatbot[{extra}]'" if extra else f"install the langchain package for {provider!r}"
        raise LLMUnavailable(f"THREATBOT_LLM={spec!r} needs an optional package: {fix} ({error})") from None
    except ValueError as error:
        raise LLMUnavailable(f"THREATBOT_LLM={spec!r} is not usable: {error}") from None


@dataclass(frozen=True)
class LLMResult:
    """The checked answer, or None with the reason the extractive answer is used instead."""

    text: str | None
    reason: str  # "ok", "timeout", "error: …", "check: …"
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.text is not None


def check_reply(text: str, records: Sequence[ThreatRecord]) -> list[str]:
    """What is wrong with an LLM reply: citations or URLs not from ``records``, no citation, secrets."""
    problems: list[str] = []
    known_ids = {r.id for r in records}
    cited: set[str] = set()
    for match in _CITATION.finditer(text):
        for part in re.split(r"[,;]\s*|\]\s*\[", match.group(1)):
            part = part.strip()
            if not part:
                continue
            if part not in known_ids:
                problems.append(f"cites {part!r}, not a retrieved record")
            else:
                cited.add(part)
    if records and not cited:
        problems.append("cites no record")
    known_urls: dict[str, list[str]] = {}
    for r in records:
        if r.url:
            known_urls.setdefault(canonical_url(r.url), []).append(r.url)
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?*_>")
        if not any(_same_link(url, given) for given in known_urls.get(canonical_url(url), ())):
            problems.append(f"links {url!r}, not a retrieved record's URL")
    problems += _unknown_domains(_URL.sub(" ", text), records)
    if _SECRET_LIKE.search(text):
        problems.append("contains something that looks like a credential")
    return problems


def _same_link(url: str, record_url: str) -> bool:
    """``url`` is ``record_url`` or a cleaner form of it: tracking parameters may be dropped, none added.

    Canonical URLs ignore ``utm_*`` and friends, so an added ``?utm_source=…`` (or any parameter the
    record's URL does not carry, or a fragment) would otherwise pass as the record's own link.
    """
    ours, theirs = urlsplit(url), urlsplit(record_url)
    if ours.fragment and ours.fragment != theirs.fragment:
        return False
    return set(parse_qsl(ours.query, keep_blank_values=True)) <= set(parse_qsl(theirs.query, keep_blank_values=True))


#: A host name written without a scheme ("exchange-hotfix-download.com/KB5001"): a link a chat client
#: will happily make clickable.
_BARE_DOMAIN = re.compile(
    r"(?<![\w@.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?![\w-])", re.IGNORECASE
)


def _unknown_domains(text: str, records: Sequence[ThreatRecord]) -> list[str]:
    """Scheme-less domains (with a real public suffix) that no record mentions, in its URL or its text."""
    found = {m.group(1).lower() for m in _BARE_DOMAIN.finditer(text)}
    suspicious = {d for d in found if get_tld("http://" + d, fail_silently=True)}
    if not suspicious:
        return []
    known = " ".join(
        " ".join([urlsplit(r.url).hostname or "", r.title, r.summary or "", r.body or "", r.source, r.mitigation or ""])
        for r in records
    ).lower()
    return [f"names the domain {d!r}, which no retrieved record mentions" for d in sorted(suspicious) if d not in known]


def _escape(text: str | None) -> str:
    """Record text as inert data: no ``<``/``>``/``&``/quotes survive, so it cannot close or forge a fence."""
    return html.escape(" ".join((text or "").split()), quote=True)


def format_record(record: ThreatRecord, *, tz: ZoneInfo, other_sources: Sequence[str] = ()) -> str:
    """One record as the model sees it: labelled fields, escaped, inside its fence."""
    lines = [
        f"title: {_escape(record.title)}",
        f"published: {record.published.astimezone(tz):%a %d %b %Y %H:%M} ({tz.key})",
        f"source: {_escape(record.source)}",
        f"url: {_escape(record.url)}",
        f"kind: {record.kind.value}; severity: {record.severity.value}; "
        f"exploited: {'yes' if record.exploited else 'not stated'}",
    ]
    for label, values in (
        ("cves", record.cves),
        ("vendors", record.vendors),
        ("products", record.products),
        ("countries", record.countries),
    ):
        lines.append(f"{label}: {_escape(', '.join(values)) if values else 'not listed'}")
    lines.append(f"summary: {_escape((record.summary or '')[:SUMMARY_CHARS]) or 'none'}")
    if record.body and len(record.summary or "") < 200:
        lines.append(f"text: {_escape(record.body[:BODY_CHARS])}")
    lines.append(f"impact: {_escape(record.impact) if record.impact else 'not listed'}")
    lines.append(f"mitigation: {_escape(record.mitigation) if record.mitigation else 'not listed'}")
    if other_sources:
        lines.append(f"also reported by: {_escape(', '.join(other_sources))}")
    return f'<record id="{_escape(record.id)}">\n' + "\n".join(lines) + "\n</record>"


class LLMAnswerer:
    """Asks a chat model for a grounded answer, within a deadline, and checks what comes back."""

    def __init__(self, model: BaseChatModel, *, timeout: float = 8.0) -> None:
        self.model = model
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings) -> LLMAnswerer | None:
        """None when no LLM is configured (the default); raises :class:`LLMUnavailable` when misconfigured."""
        if not settings.llm:
            return None
        model = build_chat_model(
            settings.llm,
            model=settings.llm_model or None,
            api_key=settings.llm_api_key.get_secret_value() or None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )
        return cls(model, timeout=settings.llm_timeout)

    def messages(
        self,
        *,
        question: str,
        records: Sequence[ThreatRecord],
        now: datetime,
        tz: str,
        window: str | None = None,
        turns: Sequence[Turn] = (),
        other_sources: dict[str, list[str]] | None = None,
    ) -> list[BaseMessage]:
        """The prompt: the system rules, then the records, thread and question. Nothing else goes in."""
        from langchain_core.messages import HumanMessage, SystemMessage

        zone = ZoneInfo(tz)
        fenced = "\n".join(
            format_record(r, tz=zone, other_sources=(other_sources or {}).get(r.id, ())) for r in records[:MAX_RECORDS]
        )
        thread = "\n".join(f"{'analyst' if t.role == 'user' else 'threatbot'}: {_escape(t.text)}" for t in turns)
        user = render_prompt(
            "answer_user",
            now=f"{now.astimezone(zone):%a %d %b %Y %H:%M}",
            tz=zone.key,
            window=window or "none (no time limit)",
            thread=thread or "(nothing yet)",
            records=fenced or "(no records)",
            question=_escape(question),
        )
        return [SystemMessage(load_prompt("answer_system")), HumanMessage(user)]

    def answer(self, **prompt_args) -> LLMResult:
        """The model's checked reply (see :meth:`_answer`), counted for ``/metrics`` when it falls back."""
        result = self._answer(**prompt_args)
        metrics.record_llm_result(result.reason)
        return result

    def _answer(self, **prompt_args) -> LLMResult:
        """The model's checked reply to :meth:`messages` (same arguments), or why not.

        The call runs in a daemon thread and is abandoned at the deadline: chat never waits longer
        than ``timeout``, and a hung provider cannot keep the process from exiting.
        """
        started = time.perf_counter()
        records: Sequence[ThreatRecord] = prompt_args["records"]
        messages = self.messages(**prompt_args)
        outcome: dict[str, object] = {}
        done = threading.Event()

        def call() -> None:
            try:
                outcome["message"] = self.model.invoke(messages)
            except Exception as error:  # any provider failure means "use the extractive answer"
                outcome["error"] = error
            finally:
                done.set()

        threading.Thread(target=call, name="threatbot-llm", daemon=True).start()
        finished = done.wait(self.timeout)
        elapsed = (time.perf_counter() - started) * 1000
        if not finished:
            log.warning("LLM answer took over %.1f s; sending the extractive answer", self.timeout)
            return LLMResult(None, "timeout", elapsed)
        if "error" in outcome:
            log.warning("LLM call failed: %s", outcome["error"])
            return LLMResult(None, f"error: {outcome['error']}", elapsed)
        text = _message_text(outcome["message"]).strip()
        if not text:
            return LLMResult(None, "check: empty reply", elapsed)
        problems = check_reply(text, records)
        if problems:
            log.warning("LLM reply rejected: %s", "; ".join(problems))
            return LLMResult(None, "check: " + "; ".join(problems), elapsed)
        return LLMResult(text, "ok", elapsed)


def _message_text(message: object) -> str:
    """Text of an AIMessage whose content may be a string or a list of content blocks."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            block if isinstance(block, str) else str(block.get("text", "")) if isinstance(block, dict) else ""
            for block in content
        )
    return str(content)
