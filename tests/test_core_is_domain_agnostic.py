"""protein_didi/core must import nothing from a domain: proteins and text plug into it, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "protein_didi" / "core"
DOMAINS = ("protein_didi.protein", "protein_didi.text")


def domain_imports(path: Path) -> list[str]:
    """One entry per statement importing a domain package in ``path`` (absolute or relative, at any nesting level)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against protein_didi.core
                base = ["protein_didi", "core"][: max(0, 2 - (node.level - 1))]
                names = [".".join([*base, node.module] if node.module else base)]
                names += [f"{names[0]}.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        hit = next((n for n in names if n.startswith(DOMAINS)), None)
        if hit is not None:
            found.append(f"{path.name}:{node.lineno} imports {hit}")
    return found


def test_core_imports_no_domain():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 10, f"expected the core's modules under {CORE}"
    offending = [hit for f in files for hit in domain_imports(f)]
    assert not offending, "protein_didi/core must stay domain-agnostic:\n" + "\n".join(offending)


def test_the_check_catches_domain_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import protein_didi.text.model\n"
        "def f():\n    from protein_didi.protein.alphabet import ALPHABET\n"
        "from ..text import tokenizer\n"
        "from .. import protein\n"
    )
    hits = domain_imports(bad)
    assert len(hits) == 4, hits
    (tmp_path / "good.py").write_text("from protein_didi.core.loss import masked_diffusion_loss\nimport torch\n")
    assert domain_imports(tmp_path / "good.py") == []
