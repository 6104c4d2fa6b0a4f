"""DESIGN.md's dependency rules, checked on the source: core at the bottom, config imported by no app,
one way to write the audit log."""

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

APPS = ("accounts", "core", "curation", "labeling", "ml")
# What each app may import of the project (DESIGN.md, "Dependency direction").
ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "curation": {"core", "accounts"},
    "labeling": {"core", "accounts", "curation", "ml"},
    "ml": {"core", "accounts", "curation"},
}


def python_files(app: str):
    return [path for path in (REPO_ROOT / app).rglob("*.py") if "migrations" not in path.parts]


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("app", APPS)
def test_each_app_imports_only_the_layers_below_it(app):
    offending = {}
    for path in python_files(app):
        project = {module.split(".")[0] for module in imported_modules(path)} & {*APPS, "config"}
        wrong = project - ALLOWED[app] - {app}
        if wrong:
            offending[str(path.relative_to(REPO_ROOT))] = sorted(wrong)
    assert offending == {}


def test_ml_training_is_a_library_that_imports_nothing_of_the_project():
    for path in (REPO_ROOT / "ml" / "training").rglob("*.py"):
        project = {m.split(".")[0] for m in imported_modules(path)} - {"ml"}
        assert not project & {*APPS, "config", "django"}, path
        assert not {m for m in imported_modules(path) if m.startswith("ml.") and not m.startswith("ml.training")}


def test_no_module_sends_or_receives_an_audit_signal():
    """Every app writes the audit log through core's audit_record, directly."""
    for app in APPS:
        for path in python_files(app):
            text = path.read_text()
            assert not re.search(r"\baudit_event\b|receiver\(audit|audit\w*\.send\(", text), path
            if "AuditEvent.objects.create" in text:
                assert path == REPO_ROOT / "core" / "services" / "audit.py", path


def test_no_module_imports_another_modules_private_helpers():
    offending = []
    for app in (*APPS, "config"):
        for path in python_files(app):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                    if private and node.module.split(".")[0] in (*APPS, "config"):
                        offending.append(f"{path.relative_to(REPO_ROOT)}: {node.module}.{private}")
    assert offending == []
