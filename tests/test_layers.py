"""The layering of DESIGN.md, checked on the source: imports point down only.

``ships`` (the CLI) -> ``leaderboard`` and ``baselines`` -> ``competition``.  Every ``.py`` file
of the four packages is parsed, and every import counts: at module level, inside functions,
relative ones, and ``importlib.import_module("...")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ships", "leaderboard", "baselines", "competition")
ALLOWED = {  # package -> the other packages it may import
    "competition": set(),
    "baselines": {"competition"},
    "leaderboard": {"competition"},
    "ships": {"leaderboard", "baselines", "competition"},
}


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source``, the source of ``module``."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, name))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(package: str, source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports of ``source`` (in ``package``) that point sideways or up."""
    bad = []
    for line, name in imported_modules(source, module, is_package):
        top = name.split(".")[0]
        if top in PACKAGES and top != package and top not in ALLOWED[package]:
            bad.append(f"{module}:{line} imports {name}")
    return bad


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down_only(package):
    files = _files(package)
    assert len(files) >= 3, f"{package}: found only {files}"
    bad = [v for path in files
           for v in violations(package, path.read_text(encoding="utf-8"), _module(path), path.name == "__init__.py")]
    assert not bad, f"{package} may import only {sorted(ALLOWED[package]) or 'itself'}:\n" + "\n".join(bad)


@pytest.mark.parametrize("package, source, expected", [
    ("competition", "from leaderboard.submit import submit_file\n", ["competition.x:1 imports leaderboard.submit"]),
    ("competition", "def f():\n    import ships.cli\n", ["competition.x:2 imports ships.cli"]),
    ("competition", "from baselines import registry\n", ["competition.x:1 imports baselines"]),
    ("baselines", "def f():\n    from leaderboard.store import Store\n", ["baselines.x:2 imports leaderboard.store"]),
    ("baselines", "import importlib\nimportlib.import_module('ships.cli')\n", ["baselines.x:2 imports ships.cli"]),
    ("leaderboard", "from baselines.workflow import run_baseline\n", ["leaderboard.x:1 imports baselines.workflow"]),
    ("leaderboard", "from ships._common import fail\n", ["leaderboard.x:1 imports ships._common"]),
    ("leaderboard", "from ..baselines import x\n", ["leaderboard.x:1 imports baselines"]),
    ("competition", "from competition.errors import ShipsError\nimport numpy\nfrom . import data\n", []),
    ("baselines", "from competition.cv import plan_folds\nfrom baselines.registry import BASELINES\n", []),
    ("ships", "from leaderboard.submit import submit_file\nfrom baselines.workflow import run_baseline\n", []),
])
def test_a_violating_import_is_caught(package, source, expected):
    """The checker itself: an import pointing sideways or up, wherever it is written, is reported."""
    assert violations(package, source, f"{package}.x") == expected
