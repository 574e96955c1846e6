"""Make uv's lock installable by the stock pip of Python 3.11 (23.2) in ``--require-hashes`` mode.

uv writes a package that a dependency asks for with an extra as one pin, ``lxml[html-clean]==6.1.3``.
pip 23.2 then fails two ways (both seen when lxml 6.2.0 came out):

* it resolves the plain requirement of another dependency (htmldate's ``lxml>=6.1.3``) on its own, picks
  the newest release, and stops with "all requirements must have their versions pinned";
* it compares extras as written, so ``html-clean`` and justext's ``html_clean`` are two different extras.

So every pin with an extra also gets a plain pin with the same hashes, and the extra is spelled with
underscores, as setuptools-era metadata (justext) spells it. Run by ``make lock``; idempotent.

    python scripts/lock_for_pip23.py requirements.lock
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_PIN_WITH_EXTRAS = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)\[(?P<extras>[^\]]+)\]==(?P<version>\S+) \\$")


def rewrite(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _PIN_WITH_EXTRAS.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        hashes = []
        j = i + 1
        while j < len(lines) and lines[j].lstrip().startswith("--hash="):
            hashes.append(lines[j].strip().rstrip("\\").strip())
            j += 1
        plain = f"{match['name']}=={match['version']}"
        if plain + " \\" not in lines:
            out.append(plain + " \\")
            out += [f"    {h} \\" for h in hashes[:-1]] + [f"    {hashes[-1]}"]
            out.append("    # the same pin without the extra, for pip 23 (scripts/lock_for_pip23.py)")
        extras = match["extras"].replace("-", "_")
        out.append(f"{match['name']}[{extras}]=={match['version']} \\")
        i += 1
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    path = Path(argv[1])
    path.write_text(rewrite(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
