"""How long a connector waits for a server: the one set of defaults, how an endpoint changes
them, and the watchdog that turns a silence into a :class:`~connectors.errors.TimedOut`.

Two settings, in seconds, per endpoint:

* ``connect_timeout`` (default 10): connecting as a whole, every phase of it: the TCP connect,
  the server's greeting, authentication, the session's setup.
* ``read_timeout`` (default 30): the longest silence while the server owes an answer: the first
  byte of a reply, the next bytes of a result mid-stream, taking our bytes (a full send buffer),
  the commit. Time the copy spends waiting on its own other end is not counted.

``0`` means no bound of the connector's own (the attempt's ``attemptTimeout`` still bounds the
whole attempt). A silent server therefore fails an attempt within about 30 s by default, as a
transient error naming the endpoint, the phase and the seconds waited.

One exception: the statements of a SqlActivity script or a SQL precondition may rightly keep the
server busy (and silent) for minutes, so there ``read_timeout`` applies only when the endpoint
sets it (:meth:`connectors.sql.SqlEndpointFields.for_statements`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

import anyio

from connectors.errors import ConfigError, TimedOut

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

#: The URL query parameters (seconds) every endpoint reads.
CONNECT_PARAM = "connect_timeout"
READ_PARAM = "read_timeout"


@dataclass(frozen=True)
class Timeouts:
    """An endpoint's bounds in seconds; None: no bound of its own."""

    connect: float | None = CONNECT_TIMEOUT
    read: float | None = READ_TIMEOUT

    def watch(self, which: str, phase: str | Callable[[], str], *, connector: str,
              operation: str) -> Watch:
        """A :class:`Watch` bounded by ``which`` ("connect" or "read")."""
        seconds = self.connect if which == "connect" else self.read
        setting = CONNECT_PARAM if which == "connect" else READ_PARAM
        return Watch(seconds, phase, setting=setting, connector=connector,
                     operation=operation)


def seconds_setting(text: str, name: str, *, scale: float = 1.0,
                    where: str | None = None) -> float | None:
    """A timeout setting's value in seconds (``scale``: seconds per unit of ``text``, 0.001 for a
    JDBC millisecond property); ``0`` is None (no bound). A :class:`ConfigError` naming the
    setting for anything but a number >= 0."""
    try:
        value = float(text) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={text!r}: a timeout is a number of "
                          f"{'milliseconds' if scale < 1 else 'seconds'} >= 0", connector=where)
    return value or None


def settings_in(params: Mapping[str, str], *,
                aliases: Mapping[str, tuple[str, float]] | None = None,
                where: str | None = None) -> dict[str, float | None]:
    """The timeouts ``params`` set, as ``{"connect": s, "read": s}`` (only those given):
    ``connect_timeout``/``read_timeout`` and ``aliases``, other names of the two (a JDBC
    driver's property) with their unit, as ``{name: ("connect" | "read", seconds per unit)}``.
    The headrace names win."""
    found: dict[str, float | None] = {}
    for name, (which, scale) in (aliases or {}).items():
        if name in params:
            found[which] = seconds_setting(params[name], name, scale=scale, where=where)
    for which, name in (("connect", CONNECT_PARAM), ("read", READ_PARAM)):
        if name in params:
            found[which] = seconds_setting(params[name], name, where=where)
    return found


def timeouts_from_params(params: Mapping[str, str], *,
                         aliases: Mapping[str, tuple[str, float]] | None = None,
                         where: str | None = None) -> Timeouts:
    """The defaults changed by what ``params`` set (:func:`settings_in`)."""
    found = settings_in(params, aliases=aliases, where=where)
    base = Timeouts()
    return Timeouts(connect=found.get("connect", base.connect),
                    read=found.get("read", base.read))


#: The innermost Watch of the running task (see :func:`waiting_on_peer`).
_CURRENT: ContextVar[Watch | None] = ContextVar("headrace_current_watch", default=None)


def current_watch() -> Watch | None:
    """The innermost :class:`Watch` the running task is in, if any."""
    return _CURRENT.get()


@contextmanager
def waiting_on_peer() -> Iterator[None]:
    """Around a wait on the copy's other end (the link between its stages): the task's watch,
    if it has one, does not count that time as the server's silence."""
    watch = _CURRENT.get()
    if watch is None:
        yield
        return
    with watch.paused():
        yield


@contextmanager
def in_phase(phase: str) -> Iterator[None]:
    """Name the task's current wait ``phase`` (``commit``...) while inside."""
    watch = _CURRENT.get()
    if watch is None:
        yield
        return
    before, watch.phase = watch.phase, phase
    try:
        yield
    finally:
        watch.phase = before


class Watch:
    """A deadline of ``seconds`` from the last sign of progress (an idle timeout) around a wait
    for a server, entered as a context manager; when it passes, the wait is cancelled and
    :class:`TimedOut` raised instead, naming the phase (a name, or a function that tells it
    when the time is up), the seconds and the setting.

    ``alive()`` moves the deadline on (bytes arrived, bytes were taken); ``paused()`` stops the
    clock while the caller waits on something that is not the server (the copy's other end);
    ``phase`` may change as the conversation goes on.
    """

    def __init__(self, seconds: float | None, phase: str | Callable[[], str], *,
                 setting: str, connector: str, operation: str) -> None:
        self.seconds = seconds
        self.phase = phase
        self.setting = setting
        self.connector = connector
        self.operation = operation
        self._scope: anyio.CancelScope | None = None
        self._token: Token[Watch | None] | None = None
        self._paused = 0
        self._expired = False
        #: Named in the error before the timeout's own words (the object, the endpoint).
        self.subject: str | None = None

    @property
    def expired(self) -> bool:
        """True once the deadline passed: what the watch covers is being cut off (a connection
        then is broken: close it without waiting on the server)."""
        return self._expired or (self._scope is not None and self._scope.cancel_called)

    def _deadline(self) -> float:
        return math.inf if self.seconds is None else anyio.current_time() + self.seconds

    def alive(self) -> None:
        """The server showed progress: its silence counts from now (callable from a
        protocol callback too)."""
        if self._scope is not None and not self._scope.cancel_called and not self._paused:
            self._scope.deadline = self._deadline()

    def hold(self) -> None:
        """No deadline until the next :meth:`alive` (someone else's timer bounds the wait)."""
        if self._scope is not None and not self._scope.cancel_called:
            self._scope.deadline = math.inf

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No deadline inside (waiting on someone else); the silence counts anew after."""
        scope = self._scope
        if scope is None or scope.cancel_called:
            yield
            return
        self._paused += 1
        scope.deadline = math.inf
        try:
            yield
        finally:
            self._paused -= 1
            self.alive()

    def error(self, subject: str | None = None) -> TimedOut:
        phase = self.phase() if callable(self.phase) else self.phase
        return TimedOut(phase=phase, seconds=self.seconds or 0.0, setting=self.setting,
                        connector=self.connector, operation=self.operation,
                        subject=subject or self.subject)

    def __enter__(self) -> Watch:
        self._expired = False
        self._scope = anyio.CancelScope(deadline=self._deadline())
        self._scope.__enter__()
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> bool:
        scope, token = self._scope, self._token
        assert scope is not None and token is not None
        self._scope = self._token = None
        _CURRENT.reset(token)
        expired = self._expired = scope.cancel_called  # only the deadline cancels this scope
        try:
            swallowed = bool(scope.__exit__(exc_type, exc, tb))  # type: ignore[arg-type]
        except BaseException as raised:  # a driver's own error while it was being cut off
            if expired and isinstance(raised, Exception):
                raise self.error() from raised
            raise
        if expired and (swallowed or isinstance(exc, Exception)):
            raise self.error() from (exc if isinstance(exc, Exception) else None)
        return swallowed


class ReportingBody(io.BytesIO):
    """A request body (an upload's part) that tells ``on_read`` each time the HTTP client takes
    the next piece of it to send: while a body is being sent no read timeout applies, so this
    is how a watch tells an upload that moves from one the server stopped taking."""

    on_read: Callable[[ReportingBody], None] | None = None

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if self.on_read is not None:
            self.on_read(self)
        return data


@contextmanager
def sending(body: object, timeouts: Timeouts, *, connector: str, operation: str,
            subject: str | None = None) -> Iterator[None]:
    """Around a call that sends ``body``: while the body is being taken, a pause of
    ``read_timeout`` between two pieces fails the call (phase ``write``); once all of it is
    taken, the HTTP client's own read timeout bounds the reply. A body that does not report
    (not a :class:`ReportingBody`) passes as it is."""
    if not isinstance(body, ReportingBody):
        yield
        return
    watch = timeouts.watch("read", "write", connector=connector, operation=operation)
    watch.subject = subject
    with watch:
        size = len(body.getbuffer())

        def taken(b: ReportingBody) -> None:
            if b.tell() >= size:
                watch.hold()  # all sent (or read for a checksum; a rewind re-arms it)
            else:
                watch.alive()

        body.on_read = taken
        try:
            yield
        finally:
            body.on_read = None
