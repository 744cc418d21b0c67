"""The package layout: imports point down, modules stay small, subpackages list their names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "fluxtrain"
LOOP = ["learner", "phases", "dispatch", "events", "callback", "access", "ordering", "state"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``from ... import name`` run when ``path`` is imported or
    its functions are called; imports under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text())
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found += [(module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return [(m, n) for m, n in found if m == "fluxtrain" or m.startswith("fluxtrain.")]


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules("schedules", "easings"), ids=module_name)
def test_schedules_and_easings_know_no_loop(path):
    allowed = ("fluxtrain.schedules", "fluxtrain.easings", "fluxtrain.exceptions")
    outside = [f"{m}.{n}" for m, n in runtime_imports(path) if not m.startswith(allowed)]
    assert outside == []


@pytest.mark.parametrize("name", LOOP)
def test_the_loop_imports_no_callback_class(name):
    imported = [
        (m, n)
        for m, n in runtime_imports(PACKAGE / f"{name}.py")
        if m.startswith("fluxtrain.callbacks")
    ]
    assert set(imported) <= {("fluxtrain.callbacks.defaults", "default_callbacks")}


def test_no_module_past_300_lines():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 300} == {}


@pytest.mark.parametrize(
    "name",
    [
        "fluxtrain",
        "fluxtrain.schedules",
        "fluxtrain.easings",
        "fluxtrain.callbacks",
        "fluxtrain.checkpoints",
        "fluxtrain.lr_finder",
        "fluxtrain.distributed",
        "fluxtrain.integrations",
    ],
)
def test_packages_list_their_public_names(name):
    package = importlib.import_module(name)
    missing = [n for n in package.__all__ if not hasattr(package, n)]
    assert missing == []
