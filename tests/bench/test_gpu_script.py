"""bench/gpu.sh is ready for a GPU window: its smoke mode runs the same path on the CPU and prints the table."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_smoke_run_prints_one_table_with_both_precisions_and_the_input_pipeline():
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}

    result = subprocess.run(
        ["bash", "bench/gpu.sh", "--smoke"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "| measurement | px | precision | batch | images/s | peak GPU MiB | first epoch s |" in lines
    assert not [line for line in lines if "FAILED" in line], result.stdout
    training = [line for line in lines if line.startswith("| B0 training step | 32 |")]
    assert [line.split("|")[3].strip() for line in training] == ["mixed_bfloat16", "float32"], result.stdout
    assert all(float(line.split("|")[5].replace(",", "")) > 0 for line in training)
    assert any(line.startswith("| input pipeline, epoch 1 (decode) | 32 |") for line in lines), result.stdout
    assert any(line.startswith("| input pipeline, cached | 32 |") for line in lines), result.stdout
