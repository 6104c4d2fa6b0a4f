#!/usr/bin/env bash
# The GPU window in one command: the seed preset (EfficientNetB5, stage-2 fine-tuning step) at 224 and 456 px,
# bfloat16 against float32, ~100 steps each, then the input pipeline; one table at the end.
# Each measurement is a fresh process with its own time limit, and the whole run stops starting new ones after
# BENCH_BUDGET_SECONDS (default 450), so it ends within 8 minutes on an H100/H200.
#
#   bench/gpu.sh            # on the GPU machine
#   bench/gpu.sh --smoke    # B0 at 32 px, a few steps: proves the script on a CPU (a test runs this)
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
budget=${BENCH_BUDGET_SECONDS:-450}
if [[ "${1:-}" == "--smoke" ]]; then
  sizes=(32); steps=3; images=64; extra=(--smoke --warmup-steps 1); limit=300
else
  sizes=(224 456); steps=100; images=2000; extra=(); limit=200
fi
results=$(mktemp)
started=$SECONDS
"$python" -c "import tensorflow as tf; print('GPUs:', [tf.config.experimental.get_device_details(g).get('device_name') for g in tf.config.list_physical_devices('GPU')] or 'none (CPU)')" 2>/dev/null
for size in "${sizes[@]}"; do
  for precision in bf16 float32; do
    if (( SECONDS - started > budget )); then echo "budget spent: skipping $size px $precision" >&2; continue; fi
    timeout "$limit" "$python" bench/gpu.py --image-size "$size" --precision "$precision" --steps "$steps" "${extra[@]}" \
      2>/dev/null | tail -1 >> "$results" || echo "{\"kind\": \"failed\", \"image_size\": $size, \"precision\": \"$precision\"}" >> "$results"
  done
done
if (( SECONDS - started <= budget )); then
  timeout "$limit" "$python" bench/gpu.py --input --image-size "${sizes[0]}" --images "$images" "${extra[@]}" \
    2>/dev/null | tail -1 >> "$results" || echo '{"kind": "failed", "input": true}' >> "$results"
fi
"$python" - "$results" $((SECONDS - started)) <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(f"\n| measurement | px | precision | batch | images/s | peak GPU MiB | first epoch s |")
print("|---|---:|---|---:|---:|---:|---:|")
for row in rows:
    if row["kind"] == "train":
        peak = f"{row['peak_gpu_mib']:,.0f}" if row["peak_gpu_mib"] is not None else "n/a (CPU)"
        print(f"| {row['backbone']} training step | {row['image_size']} | {row['precision']} | {row['batch']} | "
              f"{row['images_per_second']:,.1f} | {peak} | {row['first_epoch_seconds']:.1f} |")
    elif row["kind"] == "input":
        print(f"| input pipeline, epoch 1 (decode) | {row['image_size']} | uint8 | | {row['first_epoch_images_per_second']:,.0f} | | |")
        print(f"| input pipeline, cached | {row['image_size']} | uint8 | | {row['cached_images_per_second']:,.0f} | | |")
    else:
        print(f"| FAILED {row} | | | | | | |")
print(f"\ntotal {sys.argv[2]} s")
PY
rm -f "$results"
