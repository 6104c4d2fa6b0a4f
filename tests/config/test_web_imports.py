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


def test_the_web_side_of_a_prediction_loads_no_tensorflow():
    """Sanitizing the picture and calibrating the worker's answer happen in the web process; the model does not."""
    code = (
        "import sys, json, io, django; django.setup(); import config.urls; "
        "from PIL import Image; buffer = io.BytesIO(); "
        "Image.linear_gradient('L').resize((96, 80)).convert('RGB').save(buffer, 'JPEG'); "  # a flat one is blank
        "from curation.services.uploads import image_upload_sanitize; image_upload_sanitize(data=buffer.getvalue()); "
        "from ml.training.calibrate import apply_temperature; apply_temperature([[0.7, 0.3]], 1.5); "
        "import ml.services.predictions, ml.api.predict; "
        "print(json.dumps([m for m in ('tensorflow', 'keras') if m in sys.modules]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
