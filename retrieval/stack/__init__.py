"""The team's stack: the products (and versions) a workspace runs, and which records touch them.

* :mod:`retrieval.stack.model` — a stack entry and a component read from a file;
* :mod:`retrieval.stack.resolve` — names to the vendor dictionary's names ("FortiGate 7.2.5");
* :mod:`retrieval.stack.importers` — TOML/YAML lists, CycloneDX JSON, CPE 2.3 lists;
* :mod:`retrieval.stack.book` — the stored stack per scope (SQLite);
* :mod:`retrieval.stack.matching` — record × stack → affected / possibly affected / not affected.

A *scope* names whose stack it is: ``default`` (the console and the CLI), ``slack:<team id>``,
``discord:<guild id>`` (see :func:`scope_for`).
"""

from __future__ import annotations

from retrieval.stack.model import DEFAULT_SCOPE, StackEntry, scope_for

__all__ = ["DEFAULT_SCOPE", "StackEntry", "scope_for"]
