"""No inline script anywhere, and a Content-Security-Policy that would refuse one."""

import re

import pytest

from tests.conftest import REPO_ROOT

TEMPLATES = sorted((REPO_ROOT / "templates").rglob("*.html"))
# <script> with a body (anything but whitespace before </script>), or without a src.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<script[^>]*>(?!\s*</script>)", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def test_the_checks_catch_what_they_look_for():
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert INLINE_SCRIPT.search('<script type="module">\n x()\n</script>')
    assert INLINE_SCRIPT.search('<script src="/static/js/a.js">init()</script>')
    assert not INLINE_SCRIPT.search('<script src="/static/js/a.js"></script>\n<script src="/static/js/b.js"></script>')
    assert INLINE_HANDLER.search('<form method="get" onsubmit="go()">')
    assert INLINE_HANDLER.search("<button\n  onclick='x()'>")
    assert not INLINE_HANDLER.search('<button data-online="1" aria-label="on">')
    assert JAVASCRIPT_URL.search('<a href="javascript:void(0)">')


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(REPO_ROOT / "templates")))
def test_no_template_has_an_inline_script_or_event_handler(template):
    text = template.read_text()

    assert not INLINE_SCRIPT.search(text), "move the code into static/js/: the CSP refuses inline scripts"
    assert not INLINE_HANDLER.search(text), "attach the handler from a static script"
    assert not JAVASCRIPT_URL.search(text)


def test_pages_carry_a_policy_that_allows_only_this_sites_scripts(client):
    response = client.get("/accounts/login/")

    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";") if part.strip())
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in response["Content-Security-Policy"]
    assert "http" not in response["Content-Security-Policy"], "no other origin"
