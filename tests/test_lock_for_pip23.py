"""The lock rewrite that lets Python 3.11's stock pip install a uv lock with extras in hash mode."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "lock_for_pip23.py"
_spec = importlib.util.spec_from_file_location("lock_for_pip23", _SCRIPT)
assert _spec is not None and _spec.loader is not None
lock_for_pip23 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_for_pip23)

UV_OUTPUT = """\
lxml[html-clean]==6.1.3 \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
    # via justext
lxml-html-clean==0.4.6 \\
    --hash=sha256:ccc
"""


def test_a_pin_with_an_extra_gets_a_plain_twin_and_underscored_extras() -> None:
    out = lock_for_pip23.rewrite(UV_OUTPUT)
    lines = out.splitlines()
    assert lines[0] == "lxml==6.1.3 \\"
    assert lines[1:3] == ["    --hash=sha256:aaa \\", "    --hash=sha256:bbb"]
    assert "lxml[html_clean]==6.1.3 \\" in lines
    assert "lxml-html-clean==0.4.6 \\" in lines, "a name with a dash is no extra"
    assert lock_for_pip23.rewrite(out) == out, "running it twice changes nothing"
