"""Tell a network failure (no connection, DNS, timeout) from other download errors.

HTTP clients wrap the real cause several layers deep: ``requests`` raises a
``ConnectionError`` holding urllib3's ``MaxRetryError``, whose ``reason`` is a
``NameResolutionError`` built on a ``socket.gaierror``. Their messages are
long and get cut mid-quote, so we walk the chain and name the cause in a few
words instead. Only the standard library is imported here; urllib3 and
requests types are recognised by name, so this works with whichever client
raised them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

# (reason shown to the user, exception class names that mean it), most specific first
_CAUSES = (
    ("name resolution failed", {"NameResolutionError", "gaierror", "LocationParseError"}),
    ("the connection timed out", {"ConnectTimeoutError", "ReadTimeoutError", "ConnectTimeout",
                                  "ReadTimeout", "Timeout", "TimeoutError", "timeout"}),
    ("the connection was refused", {"ConnectionRefusedError"}),
    ("the connection failed", {"NewConnectionError", "ProtocolError", "ProxyError", "SSLError",
                               "ConnectionResetError", "ConnectionAbortedError", "MaxRetryError",
                               "ConnectionError", "RemoteDisconnected"}),
)


@dataclass
class NetworkFailure:
    """A failure to reach a server: which host (when known) and why, in a few words."""

    host: str | None
    reason: str


def network_failure(exc: BaseException) -> NetworkFailure | None:
    """The network cause somewhere in ``exc``'s chain, or None if it is not one."""
    chain = list(_chain(exc))
    names = [{cls.__name__ for cls in type(e).__mro__} for e in chain]
    if isinstance(exc, socket.gaierror):
        names[0].add("gaierror")
    for reason, markers in _CAUSES:
        if any(markers & found for found in names):
            return NetworkFailure(_host(chain), reason)
    return None


def _chain(exc: BaseException, limit: int = 20) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, ``reason`` and exception args."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < limit:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  *getattr(current, "args", ())]
        todo.extend(e for e in linked if isinstance(e, BaseException))


def _host(chain: list[BaseException]) -> str | None:
    """The host urllib3 or requests was connecting to, where an exception says."""
    for exc in chain:
        for holder in (getattr(exc, "pool", None), getattr(exc, "conn", None)):
            host = getattr(holder, "host", None)
            if isinstance(host, str) and host:
                return host
        url = getattr(getattr(exc, "request", None), "url", None)
        if isinstance(url, str) and "://" in url:
            return url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0] or None
    return None
