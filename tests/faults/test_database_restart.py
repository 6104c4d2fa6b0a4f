"""PostgreSQL restarted while readers review: 503 with a clear message while it is down, service
back without restarting the web server, and every review answered 201 kept."""

import threading
import time

import pytest

from tests.faults.conftest import manage, production_env
from tests.services import PostgresServer, postgres_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed here"),
]

SEED = """
from rest_framework.authtoken.models import Token
from accounts.services import user_create_or_update
from tests.factories import ImageFactory
ImageFactory.create_batch(60)
for name in ("fault-reader-1", "fault-reader-2", "fault-reader-3"):
    user, _ = user_create_or_update(username=name, role="reviewer", password="a long test pass phrase")
    print("TOKEN", Token.objects.create(user=user).key)
"""
DATABASE_DOWN = "The database is not answering. Nothing was saved by this request; try again in a minute."


def _review_loop(web, token: str, answers: list, stop: threading.Event) -> None:
    while not stop.is_set():
        queue = web.request("GET", "/api/v1/review-queue/next/?count=1", token=token, timeout=10)
        answers.append(("next", queue))
        if queue.status != 200 or not queue.json()["items"]:
            time.sleep(0.1)
            continue
        image = queue.json()["items"][0]["image"]
        answers.append(
            ("review", web.request("POST", "/api/v1/reviews/", token=token, data={"image": image, "label": "eczema"}))
        )
        time.sleep(0.05)


def _created(answers: list, since: float = 0.0) -> list:
    return [a for kind, a in answers if kind == "review" and a.status == 201 and a.started > since]


def _wait(condition, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def test_postgresql_restart_during_reviewing(tmp_path, start_web):
    pg = PostgresServer(durable=True).init()
    pg.start()
    try:
        env = production_env(tmp_path, DATABASE_URL=pg.create_database("dermcurate_fault"), MEDIA_ROOT=str(tmp_path))
        manage(env, "migrate", "--noinput", "-v", "0")
        seeded = manage({**env, "DJANGO_SETTINGS_MODULE": "config.settings.test"}, code=SEED)
        tokens = [line.split()[1] for line in seeded.splitlines() if line.startswith("TOKEN ")]
        assert len(tokens) == 3
        web = start_web(env)
        answers: list = []
        stop = threading.Event()
        readers = [threading.Thread(target=_review_loop, args=(web, t, answers, stop)) for t in tokens]
        for reader in readers:
            reader.start()
        try:
            _wait(lambda: len(_created(answers)) >= 5, 30, "reviewing never got going")

            pg.stop("fast")
            down_at = time.monotonic()
            _wait(lambda: sum(1 for _, a in answers if a.started > down_at) >= 6, 20, "no request was made while down")
            time.sleep(2)  # down for a while, not a blink
            up_at = time.monotonic()
            pg.start()
            _wait(lambda: len(_created(answers, since=up_at)) >= 5, 30, "reviewing did not resume")
        finally:
            stop.set()
            for reader in readers:
                reader.join(timeout=30)

        assert web.process.poll() is None, "the web server kept running through the restart"
        while_down = [a for _, a in answers if a.started > down_at and a.finished < up_at]
        assert while_down
        for answer in while_down:
            assert answer.status == 503, answer.body
            assert answer.json() == {"detail": DATABASE_DOWN, "code": "database_unavailable"}
            assert answer.headers["Retry-After"] == "30"
        assert {a.status for _, a in answers} <= {200, 201, 503}
        assert b"Traceback" not in b"".join(a.body for _, a in answers)
        acknowledged = {a.json()["id"] for a in _created(answers)}
        stored = {int(pk) for pk in pg.psql("SELECT id FROM labeling_review", database="dermcurate_fault").split()}
        assert acknowledged <= stored, f"reviews answered 201 but lost: {sorted(acknowledged - stored)}"
        assert len(_created(answers, since=up_at)) >= 5
    finally:
        pg.remove()
