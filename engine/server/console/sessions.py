"""Console logins: an access key and its secret (the API's credentials) exchanged for a session
cookie, and the CSRF token every action must carry.

Sessions live in this process's memory (a restart logs everyone out), bounded in number and
in idle time. The cookie holds only a random token; the secret is compared in constant time
and never kept; an access key id with ten failed logins in a row is refused for a minute. Each
session has its own CSRF token, sent back by the page as the
``X-CSRF-Token`` header or a ``csrf_token`` form field and compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from engine.server.sigv4 import CredentialSet

COOKIE = "headrace_console"
#: a session unused this long is gone
IDLE_SECONDS = 12 * 3600
#: the most sessions kept; the least recently used goes first
MAX_SESSIONS = 10_000
#: failed logins with one access key id (known or not) before it is refused for a while
MAX_FAILURES = 10
LOCKOUT_SECONDS = 60.0
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


@dataclass
class Session:
    token: str
    #: the access key id that logged in (shown on the page; never the secret)
    principal: str
    csrf: str
    last_seen: float
    #: a message for the next page this session sees (the outcome of an action)
    notice: str | None = None
    error: str | None = None

    def take_messages(self) -> tuple[str | None, str | None]:
        notice, error = self.notice, self.error
        self.notice = self.error = None
        return notice, error


class Sessions:
    """The logged-in sessions of one server."""

    def __init__(self, credentials: CredentialSet | None, *,
                 idle_seconds: float = IDLE_SECONDS, max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        #: None: ``--no-auth`` (loopback only): a session is handed out without a login
        self.credentials = credentials
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        #: access key id -> (failed logins in a row, when the last one was)
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def locked(self, access_key: str) -> bool:
        """Too many failed logins with this key lately: refuse to check its secret."""
        failures = self._failures.get(access_key)
        if failures is None:
            return False
        count, last = failures
        if self.clock() - last > LOCKOUT_SECONDS:
            del self._failures[access_key]
            return False
        return count >= MAX_FAILURES

    def login(self, access_key: str, secret: str) -> Session | None:
        """A new session when the secret is the key's; None otherwise (and counted)."""
        if self.check_secret(access_key, secret):
            self._failures.pop(access_key, None)
            return self.open(access_key)
        count = self._failures.pop(access_key, (0, 0.0))[0]
        self._failures[access_key] = (count + 1, self.clock())
        while len(self._failures) > self.max_sessions:
            self._failures.popitem(last=False)
        return None

    @property
    def open_access(self) -> bool:
        return self.credentials is None

    def check_secret(self, access_key: str, secret: str) -> bool:
        if self.credentials is None:
            return True
        known = self.credentials.secrets.get(access_key)
        # compare against something even for an unknown key, so timing says nothing
        expected = known if known is not None else secrets.token_urlsafe(24)
        same = hmac.compare_digest(expected.encode(), secret.encode())
        return known is not None and same

    def open(self, principal: str) -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32), now)
        self._sessions[session.token] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle_seconds:
            del self._sessions[token]
            return None
        session.last_seen = now
        self._sessions.move_to_end(token)
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)


def csrf_matches(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
