"""The demo's model: `make demo`'s data, then the `tiny` preset on snapshot demo-v1, timed, with its test metrics.

    scripts/with-test-services.sh .venv/bin/python bench/demo_train.py [--per-class 80] [--seeds 0]

Runs `manage.py demo` (drawn pictures, imports, review history, snapshot demo-v1) and `manage.py train --preset
tiny --sync` on a throwaway database, as a curator would after `make demo`. Goal: macro F1 >= 0.8 within 3 minutes
on 2 cores. ``--seeds 0,1,2`` trains once per training seed on the same snapshot.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import bench_django, machine_line, markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, help="demo pictures per class (default: `manage.py demo`'s, 80)")
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated (default 0)")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="dermcurate-bench-var-"))
    os.environ["DERMCURATE_VAR_DIR"] = str(var_dir)
    os.environ["ML_BASE_WEIGHTS"] = "none"  # as the demo trains
    rows = []
    try:
        with bench_django("dermcurate_bench_demo_train"):
            from django.core.management import call_command

            from curation.models import Snapshot

            print(machine_line(), flush=True)
            # Unless asked otherwise, the demo's own default: the benchmark measures what `make demo` builds.
            sizing = {} if args.per_class is None else {"per_class": args.per_class}
            call_command("demo", **sizing, as_json=True, stdout=io.StringIO())
            snapshot = Snapshot.objects.get(name="demo-v1")
            counts = snapshot.stats.get("per_split", snapshot.stats)
            print(f"demo-v1: {snapshot.item_count} images; stats {json.dumps(counts)[:400]}", flush=True)
            for seed in [int(value) for value in args.seeds.split(",")]:
                out = io.StringIO()
                started = time.perf_counter()
                call_command(
                    "train", snapshot=snapshot.pk, preset="tiny", config=json.dumps({"seed": seed}), sync=True,
                    as_json=True, stdout=out,
                )  # fmt: skip
                seconds = time.perf_counter() - started
                summary = json.loads(out.getvalue().strip().splitlines()[-1])
                metrics = summary.get("metrics", {})
                rows.append(
                    [
                        seed,
                        summary.get("status"),
                        f"{seconds:.0f}",
                        f"{metrics.get('macro_f1', float('nan')):.3f}",
                        f"{metrics.get('accuracy', float('nan')):.3f}",
                        f"{metrics.get('balanced_accuracy', float('nan')):.3f}",
                    ]
                )
                print(rows[-1], flush=True)
            print(machine_line(), flush=True)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    print()
    print(markdown_table(["seed", "status", "wall s", "test macro F1", "accuracy", "balanced accuracy"], rows))


if __name__ == "__main__":
    main()
