"""The package's import graph has no cycle and no upward arrow (static: ``ast`` only, nothing is imported).

Floors, lowest first; a module may import its own room (top-level package or module) and any room on a
lower floor, never a room on its own floor or above:

0. ``core`` (the papers' methods, domain-agnostic, and which errors are the user's): everything else builds on
   it, so it must know nothing of proteins, text, scores or commands;
1. ``cli`` and ``progress`` (argparse/tqdm plumbing; ``cli`` prints core's user errors): shared by the commands
   of both domains, so they know nothing of either;
2. ``protein`` and ``text``, the two domains (alphabet or tokenizer, models, judges and their trainers,
   generation, CDR redesign with its antibody numbering): siblings, so neither imports the other, and
   generation never imports evaluation;
3. ``eval``: scores of protein sequences (diversity, statistics, antibody metrics, IgLM), built on the
   protein domain;
4. ``fold`` and ``viz``: structures, predicted (IgFold summaries reuse eval's bootstrap and natural set) and
   drawn;
5. the commands (``python -m protein_didi.<command>``) and the report: they wire everything below and
   nothing imports them.

Lazy imports inside functions and ``TYPE_CHECKING`` imports count: they are dependencies all the same. So does
a command's dispatch: a module calling ``run_command("sample", …)`` imports the bodies that ``COMMANDS`` in
``cli.py`` names for ``sample`` (the runner imports them by name, which no import statement shows).
Importing a submodule runs its parents' ``__init__`` too; those implicit arrows are not counted.
No module may replace an entry of ``sys.modules``: an alias module hides which one really holds the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "protein_didi"
FLOORS: tuple[tuple[str, ...], ...] = (
    ("__init__", "core"),
    ("cli", "progress"),
    ("protein", "text"),
    ("eval",),
    ("fold", "viz"),
    ("curves", "distill", "report", "sample", "train_judge", "train_teacher"),
)
RUNNER = "run_command"  # protein_didi.cli's runner: its first argument names a row of COMMANDS

Edge = tuple[str, str, str]  # importer, imported, "path:line"


def modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted name → file for every module of ``package`` under ``root`` (a package is its ``__init__``)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def command_table(root: Path = ROOT, package: str = PACKAGE) -> dict[str, tuple[str, ...]]:
    """``COMMANDS`` of ``cli.py`` (command → the body modules it runs), read without importing anything."""
    path = root / package / "cli.py"
    if not path.is_file():
        return {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "COMMANDS":
            return {command: tuple(bodies) for command, bodies in ast.literal_eval(value).items()}
    return {}


def dispatched(node: ast.AST, commands: dict[str, tuple[str, ...]]) -> list[str]:
    """The bodies a ``run_command("name", …)`` call runs (``[]`` for any other node)."""
    if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
        return []
    func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    return list(commands.get(node.args[0].value, ())) if func == RUNNER else []


def imports(
    name: str,
    path: Path,
    known: dict[str, Path],
    package: str = PACKAGE,
    commands: dict[str, tuple[str, ...]] | None = None,
) -> Iterator[tuple[str, int]]:
    """(imported module of ``package``, line) for every import statement in ``path``, at any nesting level, and for
    every command it runs (``run_command`` with a row of ``commands``)."""
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if bodies := dispatched(node, commands or {}):
            targets = bodies
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            submodules = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in known]
            targets = submodules or [module]  # ``from pkg import mod`` imports mod; ``from mod import f`` mod
        else:
            continue
        for target in targets:
            if target != package and not target.startswith(package + "."):
                continue
            while target not in known and "." in target:  # ``import a.b.c`` of a name inside a module
                target = target.rpartition(".")[0]
            if target in known and target != name:
                yield target, node.lineno


def graph(root: Path = ROOT, package: str = PACKAGE) -> list[Edge]:
    known = modules(root, package)
    commands = command_table(root, package)
    return [
        (name, target, f"{path.relative_to(root)}:{line}")
        for name, path in known.items()
        for target, line in imports(name, path, known, package, commands)
    ]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a readable chain of arrows."""
    out: dict[str, list[Edge]] = {}
    for edge in edges:
        out.setdefault(edge[0], []).append(edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for _, w, _ in out.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(out):
        if v not in index:
            visit(v)
    return [[f"{a} -> {b} ({where})" for a, b, where in edges if a in g and b in g] for g in groups]


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward(edges: list[Edge], floors: tuple[tuple[str, ...], ...] = FLOORS) -> list[str]:
    """Arrows from a room to one on the same floor or above, and rooms missing from ``floors``."""
    floor = {r: i for i, rooms in enumerate(floors) for r in rooms}
    bad = []
    for a, b, where in edges:
        ra, rb = room(a), room(b)
        missing = [r for r in (ra, rb) if r not in floor]
        if missing:
            bad.append(f"{where}: room {missing[0]!r} is on no floor; add it to FLOORS in {Path(__file__).name}")
        elif ra != rb and floor[rb] >= floor[ra]:
            bad.append(f"{where}: {a} (floor {floor[ra]}) imports {b} (floor {floor[rb]})")
    return bad


def test_no_import_cycles() -> None:
    edges = graph()
    assert len({a for a, _, _ in edges}) >= 50, "expected the package's modules under " + str(ROOT / PACKAGE)
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n\n".join("\n".join(c) for c in found)


def test_no_upward_imports() -> None:
    bad = upward(graph())
    assert not bad, "imports that run sideways or back up (see the floors in this file):\n" + "\n".join(bad)


def test_every_command_is_dispatched_and_its_bodies_count_as_imports() -> None:
    table = command_table()
    assert {"sample", "distill", "train_teacher", "train_judge", "report"} <= set(table), table
    edges = {(a, b) for a, b, _ in graph()}
    for command, bodies in table.items():
        dispatcher = f"{PACKAGE}.report.cli" if command == "report" else f"{PACKAGE}.{command}"
        assert all((dispatcher, body) in edges for body in bodies), (command, bodies)


def test_no_module_replaces_an_entry_of_sys_modules() -> None:
    swaps = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in modules(ROOT).values()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "sys.modules"
    ]
    assert not swaps, "modules that alias another through sys.modules:\n" + "\n".join(swaps)


def test_the_checks_catch_cycles_and_upward_arrows(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    for sub in ("core", "protein", "eval"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "loop.py").write_text("def f():\n    from protein_didi import sample\n")
    (pkg / "protein" / "a.py").write_text("from . import b\nimport torch\n")
    (pkg / "protein" / "b.py").write_text("from protein_didi.protein.a import x\n")
    (pkg / "protein" / "redesign.py").write_text("from ..eval import numbering\n")
    (pkg / "eval" / "numbering.py").write_text("from protein_didi.protein.a import y\n")
    (pkg / "sample.py").write_text("import protein_didi.core.loop\n")
    (pkg / "cli.py").write_text('COMMANDS = {"judge": ("protein_didi.eval.judge", "protein_didi.protein.b")}\n')
    (pkg / "eval" / "judge.py").write_text("")
    (pkg / "protein" / "c.py").write_text('from protein_didi import cli\n\ncli.run_command("judge", [])\n')
    edges = graph(tmp_path)
    found = cycles(edges)
    assert sorted(len(c) for c in found) == [2, 2], found  # a <-> b; core.loop <-> sample
    bad = upward(edges)
    assert any("core.loop (floor 0) imports protein_didi.sample" in b for b in bad), bad
    assert any("protein.redesign (floor 2) imports protein_didi.eval.numbering" in b for b in bad), bad
    assert any("protein.c (floor 2) imports protein_didi.eval.judge" in b for b in bad), bad  # through the table
    assert len(bad) == 3, bad  # eval -> protein, sample -> core, protein.c -> cli and -> protein.b run downward
    (pkg / "newroom.py").write_text("from protein_didi.core import loop\n")
    assert any("room 'newroom' is on no floor" in b for b in upward(graph(tmp_path)))
