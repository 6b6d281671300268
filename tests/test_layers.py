"""The layers of docs/ARCHITECTURE.md, enforced: every import (at module level or inside a
function) goes to the same layer or one below, except the documented conveniences of results
(late calls into verify, analyses and report); only the adapters import TransformerLens; no
module takes another's private names; and the lower layers load without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "symtrans"

# The layers, lowest first (docs/ARCHITECTURE.md). A module belongs to the longest prefix here.
LAYERS: dict[str, int] = {
    "symtrans.errors": 0,
    "symtrans.kinds": 1,
    "symtrans.labels": 1,
    "symtrans.templates": 1,
    "symtrans.models": 1,
    "symtrans.printing": 2,
    "symtrans.expression": 2,
    "symtrans.results": 3,
    "symtrans.verify": 4,
    "symtrans.norm": 5,
    "symtrans.adapter": 5,
    "symtrans.trace": 6,
    "symtrans.analyses": 7,
    "symtrans.report": 8,
    "symtrans": 9,  # the public API (__init__), lazy
    "symtrans.cli": 10,
    "symtrans.testing": 10,
}
# Conveniences of the results (d.verify(), d.save(), d.ablate(), ...): one-line late calls.
LATE_CALLS_FROM = "symtrans.results"
LATE_CALLS_TO = ("symtrans.verify", "symtrans.analyses", "symtrans.report")
# What may load without torch (and therefore must not import it).
TORCH_FREE = (
    "symtrans.errors",
    "symtrans.kinds",
    "symtrans.labels",
    "symtrans.templates",
    "symtrans.models",
    "symtrans.printing",
    "symtrans.expression",
    "symtrans.results",
    "symtrans.verify",
    "symtrans.report",
    "symtrans.cli",
)
MODEL_LIBRARIES = ("transformer_lens", "nnsight")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a name imported from a package counts as its module)
    names: tuple[str, ...]
    late: bool  # inside a function
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def imports(path: Path) -> list[Import]:
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, late: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: never executed
            inner = late or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(source, alias.name, (), late, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                # `from . import labels` imports the module symtrans.labels; other names come
                # from the module `target` itself
                names = []
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    where = ROOT / sub.replace(".", "/")
                    if where.with_suffix(".py").exists() or where.is_dir():
                        found.append(Import(source, sub, (), late, child.lineno))
                    else:
                        names.append(alias.name)
                if names:
                    found.append(Import(source, target, tuple(names), late, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return found


ALL = [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports(path)]
INTERNAL = [imp for imp in ALL if imp.target.startswith("symtrans")]


def test_every_module_has_a_layer():
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    assert modules and all(layer_of(m) is not None for m in modules), [
        m for m in modules if layer_of(m) is None
    ]


def test_imports_go_down_the_layers():
    wrong = []
    for imp in INTERNAL:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        assert src is not None and dst is not None, imp
        if dst <= src:
            continue
        convenience = (
            imp.late
            and imp.source.startswith(LATE_CALLS_FROM)
            and imp.target.startswith(LATE_CALLS_TO)
        )
        if not convenience:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} (layer {src} -> {dst})")
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_an_upward_import(tmp_path):
    """The check itself can fail: an analysis imported by the results at module level."""
    bad = tmp_path / "symtrans" / "results" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from ..analyses.decompose import decompose\n")
    (imp,) = [i for i in imports_at(bad, tmp_path) if i.target == "symtrans.analyses.decompose"]
    assert layer_of(imp.target) > layer_of(imp.source) and not imp.late  # type: ignore[operator]


def imports_at(path: Path, root: Path) -> list[Import]:
    global ROOT
    saved, ROOT = ROOT, root
    try:
        return imports(path)
    finally:
        ROOT = saved


def test_no_module_takes_private_names():
    private = [
        f"{imp.source}:{imp.line} takes {name} from {imp.target}"
        for imp in INTERNAL
        for name in imp.names
        if name.startswith("_") and name != "__version__"
    ]
    assert not private, private


def test_only_the_adapters_know_transformer_lens():
    outside = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in ALL
        if imp.target.split(".")[0] in MODEL_LIBRARIES
        and not imp.source.startswith("symtrans.adapter")
    ]
    assert not outside, outside


@pytest.mark.parametrize("module", TORCH_FREE)
def test_lower_layers_load_without_torch(module):
    """Importing these (with everything they import) loads neither torch nor TransformerLens."""
    code = (
        f"import sys, {module}; "
        "heavy = [m for m in ('torch', 'transformer_lens', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "", f"{module} loads {done.stdout.strip()}"


def test_import_symtrans_is_lazy():
    code = (
        "import sys, symtrans as st; assert 'torch' not in sys.modules; "
        "st.decompose; print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "True"  # touching an analysis loads torch, not before
