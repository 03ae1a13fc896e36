"""Libraries stay pure: no Prefect/MLflow in pii_detect or revs_engine, and they don't import each other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "pii_detect": {"prefect", "mlflow", "revs_engine", "tasks", "flows"},
    "revs_engine": {"prefect", "mlflow", "pii_detect", "tasks", "flows"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_library_does_not_import_orchestration_or_the_other_library(package):
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN[package])
        for p in (ROOT / package).rglob("*.py")
        if _imports(p) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_flows_do_not_import_heavy_libraries_at_module_level():
    heavy = {"torch", "presidio_analyzer", "pyarrow", "transformers"}
    offenders = {}
    for p in (ROOT / "flows").rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        top = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                top.add(node.module.split(".")[0])
        if top & heavy:
            offenders[str(p.relative_to(ROOT))] = sorted(top & heavy)
    assert offenders == {}
