import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

HEAVY = ("tensorflow", "keras", "sklearn", "statsmodels", "scipy", "matplotlib", "imagehash")


def test_a_web_process_loads_no_machine_learning_library():
    code = (
        "import sys, json, django; django.setup(); import config.urls, config.wsgi; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
