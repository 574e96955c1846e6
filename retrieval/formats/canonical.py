"""Canonical records: JSON (one object or a list) and JSONL in exactly :class:`ThreatRecord`'s field names.

This is both an input format and what ``threatbot export`` writes, so a round trip must be lossless;
each record is validated on its own so that one bad line costs one record, not the file.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from retrieval.formats import ParsedSource, item_problem
from retrieval.formats.link_items import link_item_to_record, looks_like_link_item
from retrieval.records import ThreatRecord

__all__ = ["parse_canonical", "parse_jsonl", "parse_jsonl_bytes", "record_from_dict"]


def record_from_dict(item: Any, *, source_name: str | None = None) -> ThreatRecord:
    """Validate one record; raises ValueError with a one-line reason. ``source_name`` fills a missing source."""
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {type(item).__name__}")
    if looks_like_link_item(item):  # a saved feed item (link archive), not a canonical record
        record = link_item_to_record(item)
        return record.model_copy(update={"source": source_name}) if source_name else record
    if source_name and not item.get("source"):
        item = {**item, "source": source_name}  # before validation, so a derived id sees it
    try:
        return ThreatRecord.model_validate(item)
    except ValidationError as exc:
        raise ValueError(_explain(exc)) from exc


def parse_canonical(data: dict[str, Any] | list[Any], *, origin: str, source_name: str | None = None) -> ParsedSource:
    """A single record object or a list of them."""
    result = ParsedSource(format="canonical-json")
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items, start=1):
        where = f"item {index}" if isinstance(data, list) else "record"
        try:
            result.records.append(record_from_dict(item, source_name=source_name))
        except Exception as exc:  # one bad item costs one record, whatever it trips over
            result.errors.append(f"{origin} {where}{_label(item)}: {item_problem(exc)}")
    return result


def parse_jsonl(text: str, *, origin: str, source_name: str | None = None) -> ParsedSource:
    """One record per line; blank lines are skipped, bad lines are reported by number."""
    result = ParsedSource(format="canonical-jsonl")
    for number, line in enumerate(text.split("\n"), start=1):
        _jsonl_line(result, number, line, origin=origin, source_name=source_name)
    return result


def parse_jsonl_bytes(content: bytes, *, origin: str, source_name: str | None = None) -> ParsedSource:
    """Like :func:`parse_jsonl`, decoding each line on its own: a line that is not UTF-8 costs that line."""
    result = ParsedSource(format="canonical-jsonl")
    for number, raw in enumerate(content.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            result.errors.append(f"{origin} line {number}: not valid UTF-8 (byte {exc.start + 1})")
            continue
        _jsonl_line(result, number, line, origin=origin, source_name=source_name)
    return result


def _jsonl_line(result: ParsedSource, number: int, line: str, *, origin: str, source_name: str | None) -> None:
    if not line.strip():
        return
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        result.errors.append(f"{origin} line {number}: invalid JSON ({exc.msg} at column {exc.colno})")
        return
    except RecursionError:
        result.errors.append(f"{origin} line {number}: JSON nested too deeply")
        return
    try:
        result.records.append(record_from_dict(item, source_name=source_name))
    except Exception as exc:  # one bad line costs one record, whatever it trips over
        result.errors.append(f"{origin} line {number}{_label(item)}: {item_problem(exc)}")


def _label(item: Any) -> str:
    """A hint of which record failed: its id, else the start of its title."""
    if not isinstance(item, dict):
        return ""
    for key in ("id", "title"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return f" ({key} {value.strip()[:60]!r})"
    return ""


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "record"
        message = error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        if error["type"] != "missing" and isinstance(given, str | int | float):
            message += f" (got {str(given)[:40]!r})"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
