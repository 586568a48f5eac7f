"""The house's layers (README, "The house, in ten minutes"): imports point from the top down.

Only imports run when a module is imported count (module level, outside ``if TYPE_CHECKING``);
imports inside functions are the documented way for ``Store``'s convenience methods to reach a
capability. A new module must be placed in a layer here, so nobody adds one without deciding.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bakestore"

GROUND = {"_version", "errors", "sqlite", "models", "registry", "schema", "clock", "store", "seeds", "paths", "files",
          "fileswap"}
CAPABILITIES = {"exports", "sources", "restore", "audit", "legacy", "forensics", "watch", "sync", "demo", "deletes",
                "loadworker"}
TOP = {"cli", "web", "datasette_plugin", "inspect", "__main__", "__init__"}
#: Top-level parts that must stay independent of each other (the UI does not run CLI commands).
SEPARATE_TOPS = [("web", "cli"), ("cli", "web"), ("datasette_plugin", "cli"), ("datasette_plugin", "web")]


def _part(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _import_time_edges() -> dict[str, set[str]]:
    """``{part: parts it imports when imported}`` for every module of the package."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        found = edges.setdefault(_part(module), set())
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for n in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(n, ast.ImportFrom):
                    if n.level:
                        base = package.split(".")[:len(package.split(".")) - (n.level - 1)]
                        target = ".".join(base + ([n.module] if n.module else []))
                    else:
                        target = n.module or ""
                    if target == "bakestore" or target.startswith("bakestore."):
                        names = [f"{target}.{a.name}" for a in n.names] if n.module is None or target == "bakestore" \
                            else [target]
                        found.update(_part(t) for t in names)
                elif isinstance(n, ast.Import):
                    found.update(_part(a.name) for a in n.names if a.name.startswith("bakestore."))
        found.discard(_part(module))
    return edges


def test_every_module_has_a_layer() -> None:
    edges = _import_time_edges()
    assert set(edges) <= GROUND | CAPABILITIES | TOP, set(edges) - (GROUND | CAPABILITIES | TOP)


def test_imports_point_down() -> None:
    edges = _import_time_edges()
    wrong = []
    for part, targets in edges.items():
        if part in GROUND:
            wrong += [(part, t) for t in targets if t not in GROUND]
        elif part in CAPABILITIES:
            wrong += [(part, t) for t in targets if t in TOP]
    wrong += [(a, b) for a, b in SEPARATE_TOPS if b in edges.get(a, set())]
    assert not wrong, f"imports against the layers: {sorted(wrong)}"


def test_no_import_cycles_between_parts() -> None:
    edges = _import_time_edges()
    edges = {k: v - {"__init__"} for k, v in edges.items()}  # the facade re-exports; nothing imports it back

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(p for p in edges if reaches(p, p, set()))
    assert not cycles, f"parts that import themselves back: {cycles}"
