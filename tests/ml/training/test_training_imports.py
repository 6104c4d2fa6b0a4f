import json
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
MODULES = ["ml.training"] + [
    f"ml.training.{path.stem}"
    for path in sorted((PROJECT_ROOT / "ml" / "training").glob("*.py"))
    if path.stem != "__init__"
]


def test_importing_the_library_loads_neither_django_nor_tensorflow():
    """Web processes import ml.training to validate configs; that must stay cheap and free of Django."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )

    loaded = json.loads(completed.stdout)
    assert "ml.training.fit" in loaded
    heavy = [name for name in loaded if name.split(".")[0] in {"django", "tensorflow", "keras"}]
    assert heavy == []
