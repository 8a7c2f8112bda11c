"""The package's layers: no module imports from a layer above its own.

Walks every import in every module under ``app/`` (function-level ones too,
since lazy imports are still dependencies) and resolves relative ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

# What each subpackage may import, besides itself. The CLI is the top: it may
# import everything, and nothing imports it.
ALLOWED: dict[str, set[str]] = {
    "cards": set(),
    "config": {"cards"},
    "tuning": {"config"},
    "ops": {"config"},
    "clients": {"config", "tuning", "ops"},
    "proxy": {"cards", "config", "tuning", "ops", "clients"},
    "evals": {"cards", "config", "tuning", "ops", "proxy"},
    "console": {"config", "tuning", "ops", "clients", "proxy", "evals"},
    "cli": {"cards", "config", "tuning", "ops", "clients", "proxy", "evals", "console"},
}


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """Every ``app...`` module a module of ``package`` imports, as dotted names, with line numbers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from . import name` may name a submodule: count it as one.
            names = [f"{module}.{alias.name}" for alias in node.names] if not node.module else [module]
            found += [(node.lineno, name) for name in names]
    return [(line, name) for line, name in found if name == "app" or name.startswith("app.")]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def modules() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if p.parent != APP)


def test_every_subpackage_has_a_layer():
    packages = {p.name for p in APP.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(APP)))
def test_no_module_imports_a_higher_layer(path: Path):
    own = path.relative_to(APP).parts[0]
    wrong = []
    package = ".".join(path.relative_to(APP.parent).parts[:-1])
    for line, module in imported_modules(path.read_text(encoding="utf-8"), package):
        layer = layer_of(module)
        if module in ("app", "app.__version__"):
            continue  # the root package holds only the version
        if layer is None or (layer != own and layer not in ALLOWED[own]):
            wrong.append(f"{path.relative_to(APP.parent)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_walk_sees_relative_and_lazy_imports():
    # The check above is only as good as the import walk: prove it sees both forms.
    source = "from ..cli.main import cli\n\ndef f():\n    from .. import __version__\n    from . import sse\n"
    found = [name for _, name in imported_modules(source, "app.proxy")]
    assert found == ["app.cli.main", "app.__version__", "app.proxy.sse"]
    assert layer_of("app.cli.main") == "cli" and "cli" not in ALLOWED["proxy"]
