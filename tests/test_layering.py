"""The layering the code depends on, checked by reading the source (no imports, no database).

* ``retrieval/`` is the bottom layer: it imports nothing from ``bot/`` or ``adapters/``, so the record
  store, ingestion and search run (and are tested, benchmarked) without the chat core.
* Only ``retrieval/store.py`` and ``retrieval/record_queries.py`` write SQL over the record tables, so a
  change to their columns is made, and reviewed, in those two files.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "retrieval", "adapters")
RECORD_SQL_OWNERS = {"retrieval/store.py", "retrieval/record_queries.py"}
#: The record tables (``retrieval/database.py``): the records, their text index, CVE index, vectors, journal.
RECORD_TABLES = r"(?:records|records_fts|record_cves|vectors|index_pending)"

_SQL_OVER_RECORD_TABLES = re.compile(
    rf"\b(?:select|delete)\b.*?\b(?:from|join)\s+{RECORD_TABLES}\b"
    rf"|\binsert\b.*?\binto\s+{RECORD_TABLES}\b"
    rf"|\bupdate\s+{RECORD_TABLES}\s+set\b"
    rf"|\bjoin\s+{RECORD_TABLES}\b",
    re.IGNORECASE | re.DOTALL,
)


def _modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every string literal but docstrings, an f-string as one text (its fields as ``{}``): SQL hides in them."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstrings.update(id(part) for part in node.values)
            yield node.lineno, "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in node.values)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inside_fstrings
        ):
            yield node.lineno, node.value


def record_sql(source: str) -> list[int]:
    """The lines of ``source`` where a string literal holds SQL over a record table."""
    return [line for line, text in _strings(ast.parse(source)) if _SQL_OVER_RECORD_TABLES.search(text)]


def _imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports (anywhere in it, lazily too), relative imports resolved."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])


def test_retrieval_imports_nothing_from_the_chat_core_or_the_adapters() -> None:
    offending = [
        f"{_name(path)}:{line} imports {module}"
        for path in _modules("retrieval")
        for line, module in _imported(path)
        if module.split(".")[0] in {"bot", "adapters"}
    ]
    assert not offending, "retrieval/ is the bottom layer:\n" + "\n".join(offending)


def test_only_the_store_writes_sql_over_the_record_tables() -> None:
    offending = [
        f"{_name(path)}:{line}"
        for path in _modules(*PACKAGES)
        if _name(path) not in RECORD_SQL_OWNERS
        for line in record_sql(path.read_text(encoding="utf-8"))
    ]
    assert not offending, (
        "SQL over the record tables belongs in a RecordStore method or retrieval/record_queries.py:\n"
        + "\n".join(offending)
    )


def test_the_owners_exist_and_hold_record_sql() -> None:
    # Were they renamed, the scan above would exempt nothing and silently check less than it says.
    for owner in RECORD_SQL_OWNERS:
        assert record_sql((ROOT / owner).read_text(encoding="utf-8")), owner


@pytest.mark.parametrize(
    "source",
    [
        'db.query("SELECT data FROM records WHERE id = ?", (x,))',
        'conn.execute("select count(*) from vectors")',
        'db.query("SELECT r.id, s.record_id " f"FROM records r LEFT JOIN {table} s ON s.record_id = r.id")',
        'sql = f"SELECT {columns} FROM {table} s JOIN records r ON r.id = s.record_id"',
        'MIGRATION = """\n    INSERT INTO seen (record_id)\n        SELECT id FROM records;\n"""',
        'conn.execute("UPDATE records SET kind = ? WHERE id = ?", (kind, rid))',
        'conn.execute("DELETE FROM record_cves WHERE record_rowid = ?", (rowid,))',
        'conn.execute("INSERT OR REPLACE INTO index_pending (record_rowid) VALUES (?)", (rowid,))',
    ],
)
def test_the_scan_finds_record_sql(source: str) -> None:
    assert record_sql(source) == [1]


@pytest.mark.parametrize(
    "source",
    [
        '"""Delivery reads from records as delivery_seen tracks them."""',  # a docstring is prose
        'log.info("re-enriched %d records from records_backup.jsonl", n)',  # no SQL verb
        'conn.execute("SELECT count(*) FROM delivery_outbox")',  # another component's table
        'conn.execute("SELECT * FROM records_archive")',  # not a record table
        'print(f"failed to update records: {error}")',
    ],
)
def test_the_scan_leaves_prose_and_other_tables_alone(source: str) -> None:
    assert record_sql(source) == []
