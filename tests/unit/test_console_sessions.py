"""Console sessions: the secret checked, sessions bounded in number and idle time, the CSRF
token compared, and a key refused for a minute after ten failed logins in a row."""

from __future__ import annotations

from engine.server.console.sessions import (
    LOCKOUT_SECONDS,
    MAX_FAILURES,
    Sessions,
    csrf_matches,
)
from engine.server.sigv4 import CredentialSet


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sessions(**kwargs: object) -> tuple[Sessions, Clock]:
    clock = Clock()
    return Sessions(CredentialSet({"AKID1": "s3cret", "AKID2": "other"}), clock=clock,
                    **kwargs), clock  # type: ignore[arg-type]


def test_a_login_needs_the_key_s_own_secret() -> None:
    made, _ = sessions()
    assert made.login("AKID1", "other") is None
    assert made.login("NOPE", "s3cret") is None
    session = made.login("AKID1", "s3cret")
    assert session is not None and session.principal == "AKID1"
    assert made.get(session.token) is session
    assert "s3cret" not in repr(session) and "s3cret" not in repr(made.credentials)


def test_sessions_end_when_idle_and_the_oldest_go_first() -> None:
    made, clock = sessions(idle_seconds=60, max_sessions=2)
    first = made.open("AKID1")
    clock.now += 59
    assert made.get(first.token) is first  # used: its idle time starts again
    second, third = made.open("AKID1"), made.open("AKID2")
    assert made.get(first.token) is None  # the least recently used of three went
    assert made.get(second.token) is second and made.get(third.token) is third
    clock.now += 61
    assert made.get(second.token) is None
    made.close(third.token)
    assert made.get(third.token) is None


def test_the_csrf_token_must_match() -> None:
    made, _ = sessions()
    session = made.open("AKID1")
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
    assert not csrf_matches(session, session.csrf[:-1])
    assert not csrf_matches(session, made.open("AKID1").csrf)  # another session's


def test_ten_failed_logins_lock_the_key_for_a_minute() -> None:
    made, clock = sessions()
    for _ in range(MAX_FAILURES):
        assert not made.locked("AKID1")
        assert made.login("AKID1", "guess") is None
    assert made.locked("AKID1")
    assert not made.locked("AKID2")  # other keys are not affected
    clock.now += LOCKOUT_SECONDS + 1
    assert not made.locked("AKID1")
    assert made.login("AKID1", "s3cret") is not None
    assert made.login("AKID1", "guess") is None and not made.locked("AKID1")  # count reset
