"""The README's configuration table and the variables the code reads cannot drift apart."""

import ast
import re

from tests.conftest import REPO_ROOT

ENV_METHODS = {"int", "bool", "list", "db", "float", "str", "json", "url", "path", "dict", "tuple", "cache_url"}
# Documented variables that something other than config/settings reads, and where.
READ_ELSEWHERE = {
    "DJANGO_SETTINGS_MODULE": "manage.py",
    "DERMCURATE_PORT": "scripts/run-demo.py",
}
GUNICORN = ("WORKERS", "THREADS", "BIND", "TIMEOUT", "GRACEFUL_TIMEOUT", "KEEPALIVE", "MAX_REQUESTS",
            "MAX_REQUESTS_JITTER", "ACCESS_LOG", "CONTROL_SOCKET")  # fmt: skip
READ_ELSEWHERE.update({f"GUNICORN_{name}": "gunicorn.conf.py" for name in GUNICORN})


def variables_the_settings_read() -> set[str]:
    """First arguments of env(...), env.int(...), env.bool(...), … in config/settings/*.py."""
    names = set()
    for path in (REPO_ROOT / "config" / "settings").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            function = node.func
            plain = isinstance(function, ast.Name) and function.id == "env"
            method = (
                isinstance(function, ast.Attribute)
                and isinstance(function.value, ast.Name)
                and function.value.id == "env"
                and function.attr in ENV_METHODS
            )
            if plain or method:
                names.add(node.args[0].value)
    return names


def variables_the_readme_documents() -> set[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_the_settings_read_environment_variables_found_by_the_parser():
    names = variables_the_settings_read()

    assert {"DATABASE_URL", "DJANGO_DEBUG", "DERMCURATE_REVIEWS_REQUIRED", "DJANGO_ALLOWED_HOSTS"} <= names


def test_every_variable_the_settings_read_is_in_the_readme_table():
    missing = variables_the_settings_read() - variables_the_readme_documents()

    assert missing == set(), f"add these to the README's configuration table: {sorted(missing)}"


def test_every_variable_in_the_readme_table_is_read_by_the_code():
    documented = variables_the_readme_documents()
    stale = documented - variables_the_settings_read() - set(READ_ELSEWHERE)

    assert stale == set(), f"the README documents variables nothing reads: {sorted(stale)}"
    for name, path in READ_ELSEWHERE.items():
        assert name in (REPO_ROOT / path).read_text(), f"{path} no longer reads {name}"
