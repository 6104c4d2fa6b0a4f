"""Is there a GPU to train on? Answered without importing TensorFlow (web processes never load it).

`ML_TRAINING_GPU` says it for a deployment whose trainers run on other machines
(`yes` / `no`); with `auto` this machine is probed: the NVIDIA driver lists its
GPUs under /proc/driver/nvidia/gpus.
"""

from pathlib import Path

from django.conf import settings

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def training_gpu() -> tuple[bool, str]:
    """(a GPU is there, the reason in words) for the training form's default preset."""
    setting = str(settings.ML_TRAINING_GPU).lower()
    if setting in ("yes", "true", "1"):
        return True, "The trainers have a GPU (ML_TRAINING_GPU=yes)."
    if setting in ("no", "false", "0"):
        return False, "The trainers have no GPU (ML_TRAINING_GPU=no)."
    try:
        gpus = sorted(path.name for path in NVIDIA_GPUS.iterdir())
    except OSError:
        gpus = []
    if gpus:
        return True, f"This machine has {len(gpus)} NVIDIA GPU{'s' if len(gpus) > 1 else ''}."
    return False, (
        "No GPU was found on this machine, so the form starts with tiny: the seed and b5 presets "
        "would take days on the CPU. Set ML_TRAINING_GPU=yes where the trainers run on GPU machines."
    )


def default_preset() -> str:
    return "seed" if training_gpu()[0] else "tiny"
