"""A slow request body under gunicorn is cut off with a 408 (core.slow_body), idle or merely trickling."""

import socket
import time

import pytest

from tests.faults.conftest import production_env

# The token endpoint behind the guard needs its tables (the lockout counts failures).
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The token endpoint reads its body without a session or a CSRF check first.
PATH, JSON = "/api/v1/auth/token/", "application/json"


def _complete(answer: bytes) -> bool:
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        return False
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return len(body) >= int(lengths[0]) if lengths else False


def _send_slowly(
    port: int, *, length: int, chunks: list[bytes], pause: float, give_up_after: float
) -> tuple[bytes, float]:
    """POST a body that comes in `chunks`, `pause` seconds apart; returns the answer and when it came."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=give_up_after) as conn:
        conn.sendall(
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {JSON}\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        answer = b""
        conn.setblocking(False)
        for chunk in chunks:
            if time.monotonic() - started > give_up_after:
                break
            try:
                conn.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            time.sleep(pause)
            try:
                answer += conn.recv(65536)
            except BlockingIOError:
                continue
            if answer:
                break
        conn.setblocking(True)
        deadline = started + give_up_after
        while not _complete(answer) and time.monotonic() < deadline:
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = conn.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            answer += data
    return answer, time.monotonic() - started


def test_a_body_that_stops_arriving_gets_408(tmp_path, start_web):
    web = start_web(production_env(tmp_path, DERMCURATE_BODY_IDLE_SECONDS="1"))

    answer, seconds = _send_slowly(web.port, length=5000, chunks=[b'{"username"'], pause=0, give_up_after=15)

    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"arrived too slowly" in answer
    assert seconds < 10


def test_a_body_that_trickles_in_gets_408_at_its_deadline(tmp_path, start_web):
    # Never idle for 1 s, but 2,000 bytes at 1 byte per 0.3 s would take 10 minutes: the deadline is
    # 1 s + 2,000 bytes at 500 bytes/s = 5 s.
    env = production_env(tmp_path, DERMCURATE_BODY_IDLE_SECONDS="1", DERMCURATE_BODY_MIN_BYTES_PER_SECOND="500")
    web = start_web(env)

    answer, seconds = _send_slowly(web.port, length=2000, chunks=[b"x"] * 2000, pause=0.3, give_up_after=20)

    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 4 < seconds < 12


def test_a_body_at_a_normal_pace_is_not_cut_off(tmp_path, start_web):
    web = start_web(production_env(tmp_path, DERMCURATE_BODY_IDLE_SECONDS="1"))
    body = b'{"username": "someone", "password": "wrong-password"}'

    answer, _ = _send_slowly(web.port, length=len(body), chunks=[body[:10], body[10:]], pause=0.3, give_up_after=15)

    assert not answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"401"  # read whole: the credentials were checked
