"""``threatbot stack``: what the team runs, from the command line.

``threatbot stack [--json]`` lists, ``stack add TEXT``, ``stack remove ID``, ``stack import FILE``
and ``stack report [--json]`` change and question it; every form takes ``--scope`` (default
``default``, the console's stack; a Slack team is ``slack:<team id>``, a Discord guild
``discord:<guild id>``). None of them needs the embedding model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.cli_args import parse_now
from bot.config import Settings

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def add_stack_command(add: Add) -> argparse.ArgumentParser:
    """Register ``stack`` (and its verbs) with the CLI's subcommand factory."""
    stack = add("stack", cmd_stack, "the team's stack: list, add, remove, import (TOML/YAML/CycloneDX/CPE), report")
    stack.add_argument("--scope", default=argparse.SUPPRESS, help="whose stack (default: default)")
    stack.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    verbs = stack.add_subparsers(dest="stack_verb", metavar="VERB")

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--scope", default=argparse.SUPPRESS, help="whose stack (default: default)")
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
        sub.add_argument("--data-dir", default=argparse.SUPPRESS, help="data folder (env THREATBOT_DATA_DIR)")
        return sub

    add_verb = verb("add", "add a product, e.g. `FortiGate 7.2.5` or a CPE 2.3 name")
    add_verb.add_argument(
        "text", nargs="+", metavar="TEXT", help='a product and version, e.g. "FortiGate 7.2.5", or a CPE 2.3 name'
    )
    remove = verb("remove", "remove an entry by its id (see `threatbot stack`)")
    remove.add_argument("entry_id", type=int, metavar="ID", help="the entry id, as `stack` lists it")
    load = verb("import", "import a TOML/YAML list, a CycloneDX JSON SBOM or a list of CPE 2.3 names")
    load.add_argument(
        "file", metavar="FILE", help="the file: TOML/YAML list, CycloneDX JSON SBOM, or CPE 2.3 names one per line"
    )
    report = verb("report", "what in the stack is in KEV, and critical/high advisories of the last 30 days")
    report.add_argument("--now", type=parse_now, default=None, help="the report's moment (ISO 8601; default: now)")
    return stack


def cmd_stack(args: argparse.Namespace) -> int:
    from retrieval.database import Database
    from retrieval.stack.importers import StackFileError
    from retrieval.stack.resolve import UnknownName
    from retrieval.stack.service import StackService

    scope = getattr(args, "scope", None) or "default"
    as_json = bool(getattr(args, "json", False))
    settings = Settings.from_env(args.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_path)
    service = StackService(db)
    try:
        match args.stack_verb:
            case "add":
                try:
                    entry, created = service.add_text(scope, " ".join(args.text))
                except UnknownName as error:
                    print(f"stack add: {error}", file=sys.stderr)
                    return 1
                if as_json:
                    _json({"entry": entry.to_json(), "created": created})
                else:
                    print(
                        f"{'added' if created else 'already in the stack'}: [{entry.id}] {entry.label} (scope {scope})"
                    )
                return 0
            case "remove":
                removed = service.remove(scope, args.entry_id)
                if removed is None:
                    print(f"stack remove: scope {scope!r} has no entry {args.entry_id}", file=sys.stderr)
                    return 1
                print(f"removed: [{removed.id}] {removed.label}")
                return 0
            case "import":
                started = time.perf_counter()
                try:
                    report = service.import_file(scope, args.file)
                except StackFileError as error:
                    print(
                        f"stack import: {error} (nothing was imported; the stored stack is unchanged)", file=sys.stderr
                    )
                    return 1
                took = time.perf_counter() - started
                if as_json:
                    _json(
                        {
                            "format": report.format,
                            "read": report.read,
                            "added": report.added.count,
                            "already": report.added.already,
                            "unknown_to_dictionary": report.unknown,
                            "seconds": round(took, 3),
                        }
                    )
                else:
                    print(
                        f"{args.file} [{report.format}]: {report.read} read, {report.added.count} added, "
                        f"{report.added.already} already in the stack, {report.unknown} not in the vendor "
                        f"dictionary (kept as named) — {took:.2f} s"
                    )
                return 0
            case "report":
                now = args.now or datetime.now(UTC)
                exposure = service.report(scope, now=now)
                if as_json:
                    _json(exposure.to_json())
                else:
                    print("\n".join(exposure.lines()).replace("*", ""))
                return 0
            case _:
                entries = service.entries(scope)
                if as_json:
                    _json({"scope": scope, "entries": [e.to_json() for e in entries]})
                elif not entries:
                    print(f"the stack of scope {scope!r} is empty (`threatbot stack add TEXT` or `stack import FILE`)")
                else:
                    for entry in entries:
                        print(f"[{entry.id}] {entry.label}" + (f"  ({entry.origin})" if entry.origin else ""))
                return 0
    finally:
        db.close()


def _json(value: object) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def with_stack(response, db, scope: str) -> dict[str, Any]:
    """``search --json`` output with each result's ``"stack"`` verdicts — no key at all when the scope has no stack."""
    from retrieval.stack.service import StackService

    out = response.to_json()
    service = StackService(db)
    if not service.has_stack(scope):
        return out
    for result, item in zip(response.results, out["results"], strict=True):
        item["stack"] = [v.to_json() for v in service.verdicts(scope, result.record)]
    return out
