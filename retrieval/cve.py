"""One CVE-id pattern for questions and records alike.

Chat clients and word processors replace the hyphen with typographic dashes (U+2010–U+2015), and
people type "CVE 2024 3400" or "cve_2024_3400"; a question and the record it asks about must agree on
what a CVE id is, so both read ids through :data:`CVE_PATTERN` and write them with :func:`normalise_cve`.
"""

from __future__ import annotations

import re

#: Separators between the parts of an id: ASCII hyphen, underscore, a space, or a Unicode dash U+2010–U+2015.
_SEPARATOR = r"[-_\s\u2010-\u2015]?"
#: ``CVE-2024-3400`` in any case, with any of the separators above; group 1 the year, group 2 the number.
CVE_PATTERN = re.compile(rf"(?<![A-Za-z0-9])CVE{_SEPARATOR}(\d{{4}}){_SEPARATOR}(\d{{4,7}})(?!\w)", re.IGNORECASE)


def normalise_cve(match: re.Match[str]) -> str:
    """The canonical spelling of a matched id: ``CVE-YYYY-NNNN``."""
    return f"CVE-{match.group(1)}-{match.group(2)}"


def find_cves(*texts: str | None) -> list[str]:
    """CVE ids in order of first appearance, canonically spelt, each once."""
    seen: dict[str, None] = {}
    for text in texts:
        for m in CVE_PATTERN.finditer(text or ""):
            seen.setdefault(normalise_cve(m), None)
    return list(seen)
