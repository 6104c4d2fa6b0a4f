"""Predict API latency and throughput against the bare model call, and ONNX Runtime against TensorFlow.

    scripts/with-test-services.sh .venv/bin/python bench/predict.py [--models B0:224,B5:456] [--requests 20]
        [--concurrent-requests 24] [--clients 8] [--onnx]

For each backbone and input size it builds the classifier (random weights: latency does not depend on them),
stores it as the production model version, and measures in the same run:

- the bare model call: ``Predictor.probabilities_of_arrays`` on one prepared image, in this process;
- with ``--onnx``: the same model converted to ONNX (tf2onnx, from the frozen graph), in an ONNX Runtime
  session, on the same array (the other way to keep TensorFlow out of web processes), with the largest
  difference of probabilities;
- the predict API end to end: gunicorn (2 gthread workers, 8 threads each, the test settings) and a real Celery
  inference worker (2 processes, prefetch 1, as the compose file runs it), one client sending
  ``--requests`` sequential multipart requests of a 600x450 JPEG, then ``--clients`` concurrent clients sending
  ``--concurrent-requests`` in all.

Latencies are p50/p95 (nearest rank) in ms; each is given as a ratio to the bare model call of the same run.
``--onnx`` needs ``onnxruntime``, ``onnx`` and ``tf2onnx`` importable (they are not project requirements).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import REPO_ROOT, bench_django, machine_line, markdown_table, percentile

WARMUP = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photo_bytes() -> bytes:
    from curation.demo_images import draw_lesion

    buffer = io.BytesIO()
    draw_lesion(2, seed=7, size=(600, 450)).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def timed(call, count: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float]) -> dict:
    return {
        "p50": percentile(seconds, 0.5) * 1000,
        "p95": percentile(seconds, 0.95) * 1000,
        "mean": statistics.fmean(seconds) * 1000,
    }


def production_version(model_path: Path, *, label: str):
    """A production ModelVersion of the saved model, with the 11 classes (no training run needed)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from curation.models import LabelClass, Snapshot
    from ml.models import ModelVersion, TrainingRun
    from ml.services.models import file_sha256

    snapshot = Snapshot.objects.filter(name="bench").first() or Snapshot.objects.create(
        name="bench", seed=0, ratios=[0.8, 0.1, 0.1], content_hash="bench", item_count=0, created_at=timezone.now()
    )
    run = TrainingRun.objects.create(
        snapshot=snapshot, preset="seed", config={}, config_hash=f"bench-{label}", status="succeeded"
    )
    artifact = default_storage.save(f"models/run-{run.pk}/model.keras", ContentFile(model_path.read_bytes()))
    ModelVersion.objects.filter(is_production=True).update(is_production=False)
    codes = list(LabelClass.objects.order_by("index").values_list("code", flat=True))
    return ModelVersion.objects.create(
        run=run,
        snapshot=snapshot,
        snapshot_hash=snapshot.content_hash,
        config={},
        class_map={str(i): code for i, code in enumerate(codes)},
        artifact=artifact,
        artifact_sha256=file_sha256(model_path),
        artifact_size=model_path.stat().st_size,
        metrics={},
        temperature=1.0,
        is_production=True,
    )


def child_env() -> dict:
    # A queue of 8 clients' B5 requests on 2 cores waits longer than the 30 s a client app is given by default.
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DJANGO_LOG_LEVEL": "WARNING",
        "ML_PREDICT_TIMEOUT_SECONDS": "600",
    }


@contextmanager
def services(*, token: str, log_dir: Path):
    """An inference worker (2 processes, the production model preloaded) and gunicorn; yields the base URL."""

    port = free_port()
    with open(log_dir / "worker.log", "w") as worker_log, open(log_dir / "gunicorn.log", "w") as web_log:
        yield from _serve(port, worker_log, web_log, log_dir)


def _serve(port, worker_log, web_log, log_dir: Path):
    import requests

    bin_dir = Path(sys.executable).parent
    worker = subprocess.Popen(
        [str(bin_dir / "celery"), "-A", "config", "worker", "-Q", "inference", "--concurrency", "2",
         "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip", "--loglevel", "INFO",
         "--hostname", f"bench-inference-{port}@%h"],
        cwd=REPO_ROOT, env=child_env(), stdout=worker_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    web = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--worker-class", "gthread", "--threads", "8", "--timeout", "120"],
        cwd=REPO_ROOT, env=child_env(), stdout=web_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if worker.poll() is not None or web.poll() is not None:
                raise RuntimeError(f"a service stopped:\n{(log_dir / 'worker.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the services did not come up within 300 s")
            ready = "ready" in (log_dir / "worker.log").read_text()
            try:
                up = requests.get(f"{base}/healthz", timeout=2).status_code < 500
            except requests.RequestException:
                up = False
            if ready and up:
                break
            time.sleep(1)
        yield base
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def api_runs(base: str, *, token: str, photo: bytes, requests_count: int, clients: int, concurrent: int) -> dict:
    import requests

    def one(session) -> float:
        started = time.perf_counter()
        answer = session.post(f"{base}/api/v1/predict/", files={"image": ("photo.jpg", photo, "image/jpeg")})
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"predict answered {answer.status_code}: {answer.text[:300]}")
        return elapsed

    sessions = []
    for _ in range(clients):
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        sessions.append(session)
    single = timed(lambda: one(sessions[0]), requests_count)

    per_client = max(1, concurrent // clients)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, sessions))  # every client connected and warm
        started = time.perf_counter()
        latencies = [
            seconds
            for batch in pool.map(lambda session: [one(session) for _ in range(per_client)], sessions)
            for seconds in batch
        ]
        wall = time.perf_counter() - started
    return {"single": summary(single), "loaded": summary(latencies), "throughput": len(latencies) / wall}


def onnx_session(model, image_size: int):
    """An ONNX Runtime session of the model. Keras's own ``model.export(format="onnx")`` (tf2onnx 1.17, Keras 3.15)
    leaves the Normalization layer's constants as graph inputs the session then demands, so the function is frozen
    first (variables and captured constants inlined) and converted from its graph."""
    import onnxruntime
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = tf.function(lambda images: model(images, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((None, image_size, image_size, 3), tf.float32, "image"))
    frozen = convert_variables_to_constants_v2(concrete)
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(),
        input_names=[tensor.name for tensor in frozen.inputs],
        output_names=[tensor.name for tensor in frozen.outputs],
        opset=17,
    )
    return onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def onnx_runs(model, arrays, *, count: int) -> dict:
    import numpy as np

    started = time.perf_counter()
    session = onnx_session(model, int(arrays.shape[1]))
    export_seconds = time.perf_counter() - started
    inputs = {session.get_inputs()[0].name: arrays.astype(np.float32)}
    seconds = timed(lambda: session.run(None, inputs), count)
    return {
        "summary": summary(seconds),
        "probabilities": session.run(None, inputs)[0],
        "export": export_seconds,
        "session": session,
    }


def measure(spec: str, args, *, token: str, photo: bytes, tmp: Path) -> dict:
    import numpy as np

    from curation.services.uploads import image_upload_sanitize
    from ml.training import config_from_preset
    from ml.training.model import build_classifier
    from ml.training.predict import Predictor

    backbone, size = spec.split(":")
    config = config_from_preset("seed", {"backbone": backbone, "image_size": int(size)})
    model_path = tmp / f"{backbone}-{size}.keras"
    build_classifier(config, 11, base_weights="none").save(model_path)
    production_version(model_path, label=spec)

    predictor = Predictor(model_path)
    arrays = predictor.prepare([image_upload_sanitize(data=photo).sanitized_jpeg])
    bare = summary(timed(lambda: predictor.probabilities_of_arrays(arrays), args.requests))
    # What one process does for a request without the worker hop: sanitize, prepare, call.
    local = summary(
        timed(lambda: predictor.probabilities([image_upload_sanitize(data=photo).sanitized_jpeg]), args.requests)
    )
    row = {"spec": spec, "bare": bare, "local": local}
    if args.onnx:
        onnx = onnx_runs(predictor.model, arrays, count=args.requests)
        session = onnx["session"]
        name = session.get_inputs()[0].name

        def onnx_request():
            return session.run(None, {name: predictor.prepare([image_upload_sanitize(data=photo).sanitized_jpeg])})

        row["onnx_local"] = summary(timed(onnx_request, args.requests))
        row["onnx"] = onnx["summary"]
        row["onnx_export"] = onnx["export"]
        row["onnx_max_diff"] = float(np.abs(onnx["probabilities"] - predictor.probabilities_of_arrays(arrays)).max())
    with services(token=token, log_dir=tmp) as base:
        row.update(
            api_runs(
                base,
                token=token,
                photo=photo,
                requests_count=args.requests,
                clients=args.clients,
                concurrent=args.concurrent_requests,
            )
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="B0:224,B5:456", help="backbone:size,... (default B0:224,B5:456)")
    parser.add_argument("--requests", type=int, default=20, help="timed calls per measurement (default 20)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--concurrent-requests", type=int, default=24, help="requests under load, in all")
    parser.add_argument("--onnx", action="store_true", help="also time an ONNX Runtime session of the model")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="dermcurate-bench-var-"))
    os.environ["DERMCURATE_VAR_DIR"] = str(var_dir)  # the children (gunicorn, worker) share it
    try:
        with bench_django("dermcurate_bench_predict") as _media, tempfile.TemporaryDirectory() as tmp:
            from rest_framework.authtoken.models import Token

            from accounts.roles import Role
            from accounts.services import user_create_or_update

            client, _ = user_create_or_update(username="teleapp", role=Role.PREDICTOR, password=secrets.token_hex(16))
            token = Token.objects.get_or_create(user=client)[0].key
            photo = photo_bytes()
            print(machine_line(), flush=True)
            rows = []
            for spec in args.models.split(","):
                rows.append(measure(spec, args, token=token, photo=photo, tmp=Path(tmp)))
                shown = {key: value for key, value in rows[-1].items() if key != "probabilities"}
                print(json.dumps(shown, default=str), flush=True)
            print(machine_line(), flush=True)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    print(f"\n### One client, {args.requests} requests of a 600x450 JPEG (ms; ratio to the bare model call)\n")
    table = []
    for row in rows:
        bare, single = row["bare"], row["single"]
        table.append(
            [
                row["spec"].replace(":", " at ") + " px",
                f"{bare['p50']:.1f}",
                f"{bare['p95']:.1f}",
                f"{single['p50']:.1f} ({single['p50'] / bare['p50']:.2f}x)",
                f"{single['p95']:.1f} ({single['p95'] / bare['p95']:.2f}x)",
            ]
        )
    print(markdown_table(["model", "bare call p50", "bare call p95", "API p50", "API p95"], table))
    print("\n### Where the time goes, one request at a time (ms, p50 / p95)\n")
    table = []
    for row in rows:
        cells = [row["spec"].replace(":", " at ") + " px", f"{row['bare']['p50']:.1f} / {row['bare']['p95']:.1f}"]
        cells.append(f"{row['local']['p50']:.1f} / {row['local']['p95']:.1f}")
        if args.onnx:
            cells.append(f"{row['onnx_local']['p50']:.1f} / {row['onnx_local']['p95']:.1f}")
        cells.append(f"{row['single']['p50']:.1f} / {row['single']['p95']:.1f}")
        table.append(cells)
    header = ["model", "bare TensorFlow call", "sanitize + prepare + TensorFlow, one process"]
    if args.onnx:
        header.append("sanitize + prepare + ONNX Runtime, one process")
    print(markdown_table([*header, "API: gunicorn + inference worker"], table))
    print(f"\n### {args.clients} concurrent clients, {args.concurrent_requests} requests in all\n")
    table = []
    for row in rows:
        bare_rate = 1000 / row["bare"]["mean"]
        table.append(
            [
                row["spec"].replace(":", " at ") + " px",
                f"{bare_rate:.2f}",
                f"{row['throughput']:.2f} ({row['throughput'] / bare_rate:.2f}x)",
                f"{row['loaded']['p50']:.0f}",
                f"{row['loaded']['p95']:.0f}",
            ]
        )
    print(markdown_table(["model", "bare calls/s (one after another)", "API requests/s", "p50 ms", "p95 ms"], table))
    if args.onnx:
        print("\n### ONNX Runtime against TensorFlow, the same prepared image (ms)\n")
        table = [
            [
                row["spec"].replace(":", " at ") + " px",
                f"{row['bare']['p50']:.1f} / {row['bare']['p95']:.1f}",
                f"{row['onnx']['p50']:.1f} / {row['onnx']['p95']:.1f}",
                f"{row['bare']['p50'] / row['onnx']['p50']:.2f}x",
                f"{row['onnx_max_diff']:.1e}",
                f"{row['onnx_export']:.0f} s",
            ]
            for row in rows
        ]
        print(
            markdown_table(
                ["model", "TensorFlow p50 / p95", "ONNX Runtime p50 / p95", "speed-up p50", "max diff", "export"],
                table,
            )
        )


if __name__ == "__main__":
    main()
