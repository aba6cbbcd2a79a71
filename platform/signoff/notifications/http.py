"""Outbound HTTP that a tenant can aim (webhooks; Slack later), guarded against SSRF.

A tenant chooses the URL, so the URL must not reach what only this installation can
reach. :func:`post` therefore

- accepts only ``http`` and ``https`` URLs without credentials (``user:pass@``);
- resolves the host once (``socket.getaddrinfo``) and refuses it when any of its
  addresses is loopback, private (RFC 1918, shared 100.64/10, unique-local fc00::/7),
  link-local (169.254/16 with the metadata address 169.254.169.254, fe80::/10),
  multicast, unspecified or otherwise reserved, unless the address lies in a CIDR of
  the platform setting ``SIGNOFF_OUTBOUND_ALLOW`` (comma-separated, none by default).
  IPv4 addresses embedded in IPv6 (``::ffff:a.b.c.d``, 6to4, Teredo) are checked too;
- connects to the address it resolved (the pin), sending the original ``Host`` header
  and, for ``https``, the original name as SNI and for the certificate check, so a DNS
  answer that changes between the check and the connection (DNS rebinding) cannot
  move the request elsewhere;
- never follows a redirect (a 3xx is handed back as it is);
- bounds the connection (``connect_timeout``), each read (``read_timeout``), when the
  last read may start (``deadline`` after the request began) and the answer it reads
  (``max_bytes``; the rest is never read: the connection is closed).

:func:`check_url` runs the same checks without connecting (registration time).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from flask import current_app, has_app_context
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from signoff.errors import N_
from signoff.languages import add_templates

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
#: No read of the answer starts later than this after the request began.
DEADLINE = 20.0
MAX_RESPONSE_BYTES = 64 * 1024
SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2000
USER_AGENT = "Signoff-Webhooks/1.0"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundError(Exception):
    """The request was not made or did not complete; ``message`` says why."""

    #: A problem that will not go away by retrying the same URL (bad URL, refused address).
    permanent = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OutboundRefused(OutboundError):
    """The URL or the address it resolves to is not allowed (nothing was sent)."""

    permanent = True


class AddressRefused(OutboundRefused):
    """The URL resolves to an address outbound requests may not reach. The message names
    the address: log it, never show it to a tenant (it would map internal DNS names);
    :func:`tenant_message` says what a tenant may read."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


#: What a tenant is told when its URL's name does not resolve (the same whether the
#: name exists only inside the platform's network or nowhere).
NOT_ALLOWED = N_(
    "This URL is not allowed: it must resolve to a public address that Signoff may "
    "reach (platform operators list exceptions in SIGNOFF_OUTBOUND_ALLOW)"
)

#: The kinds of address :func:`forbidden_reason` names, for the catalogue (a tenant
#: reads them in :func:`tenant_message`).
ADDRESS_KINDS = (
    N_("unspecified"),
    N_("loopback"),
    N_("link-local (cloud metadata)"),
    N_("link-local"),
    N_("multicast"),
    N_("reserved"),
    N_("private"),
)

#: The messages below as they are stored on a delivery's row (``last_error``, English
#: with the values in): :func:`signoff.languages.translated` reads them back to show
#: them in the reader's language; a ``%(problem)s`` or ``%(reason)s`` inside is itself
#: translated.
MESSAGE_TEMPLATES = (
    N_(
        "This URL resolves to a %(reason)s address, which outbound requests may not reach "
        "(platform operators list exceptions in SIGNOFF_OUTBOUND_ALLOW)"
    ),
    N_("The URL is longer than %(limit)s characters"),
    N_("The URL is not valid (%(error)s)"),
    N_("%(host)s does not resolve (%(error)s)"),
    N_("%(host)s does not resolve"),
    N_("%(host)s (%(address)s): cannot connect (%(error)s)"),
    N_("%(host)s: timed out (%(error)s)"),
)
add_templates(*MESSAGE_TEMPLATES)


def tenant_message(exc: OutboundError) -> str:
    """``exc`` as a tenant may read it: the kind of address refused, never the address."""
    if isinstance(exc, AddressRefused):
        return N_(
            "This URL resolves to a %(reason)s address, which outbound requests may not "
            "reach (platform operators list exceptions in SIGNOFF_OUTBOUND_ALLOW)",
            reason=exc.reason,
        )
    if isinstance(exc, OutboundUnreachable):
        return NOT_ALLOWED
    return exc.message


class OutboundUnreachable(OutboundError):
    """The name did not resolve or the connection failed."""


class OutboundTimeout(OutboundError):
    """Connecting or reading took too long."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the pinned address) and what to say."""

    url: str
    scheme: str
    host: str  # the name as given (IDNA-encoded), without brackets
    port: int
    path: str  # path and query, at least "/"
    address: str  # the resolved, allowed address the connection goes to
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    #: The answer was longer than ``max_bytes``; the rest was not read.
    truncated: bool
    latency_ms: int
    address: str


# --- policy -------------------------------------------------------------------------------


def allowed_networks(value: str | None = None) -> tuple[IPNetwork, ...]:
    """The networks of ``SIGNOFF_OUTBOUND_ALLOW`` (or ``value``). An entry that is not a
    CIDR is logged and ignored: a typo narrows what is allowed, never widens it."""
    if value is None:
        value = (
            str(current_app.config.get("SIGNOFF_OUTBOUND_ALLOW") or "") if has_app_context() else ""
        )
    nets: list[IPNetwork] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            log.error("SIGNOFF_OUTBOUND_ALLOW: %r is not a CIDR; ignored", entry)
    return tuple(nets)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``None`` when it is)."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = forbidden_reason(inner)
        if reason is not None:
            return reason
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata)" if str(ip) == "169.254.169.254" else "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip in _UNIQUE_LOCAL):
        return "private"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "private"  # fec0::/10, deprecated but still routed inside some networks
    if not ip.is_global:
        return "reserved"
    return None


_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")


def check_address(address: str, allow: tuple[IPNetwork, ...]) -> None:
    """Raise :class:`OutboundRefused` unless ``address`` is public or explicitly allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip.version == net.version and ip in net for net in allow):
        return
    inner = _embedded_ipv4(ip)
    if inner is not None and any(inner.version == n.version and inner in n for n in allow):
        return
    reason = forbidden_reason(ip)
    if reason is not None:
        raise AddressRefused(
            f"{address} is a {reason} address; outbound requests may not reach it "
            "(SIGNOFF_OUTBOUND_ALLOW lists the exceptions)",
            reason=reason,
        )


# --- URL and name -------------------------------------------------------------------------


def _split(url: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url.strip():
        raise OutboundRefused(N_("A URL is required"))
    if len(url) > MAX_URL_LENGTH:
        raise OutboundRefused(
            N_("The URL is longer than %(limit)s characters", limit=MAX_URL_LENGTH)
        )
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise OutboundRefused(N_("The URL must not contain spaces or control characters"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(N_("The URL is not valid (%(error)s)", error=str(exc))) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise OutboundRefused(N_("Only http and https URLs are allowed"))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutboundRefused(N_("The URL must not contain a user name or password"))
    host = parts.hostname or ""
    if not host:
        raise OutboundRefused(N_("The URL has no host"))
    try:
        host = host.encode("idna").decode("ascii") if not _is_ip(host) else host
    except UnicodeError:
        raise OutboundRefused(N_("The URL's host name is not valid")) from None
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise OutboundRefused(N_("The URL's port is not valid"))
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, path


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def resolve(host: str, port: int) -> tuple[str, ...]:
    """Every address ``host`` resolves to for a TCP connection (one lookup)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise OutboundUnreachable(
            N_("%(host)s does not resolve (%(error)s)", host=host, error=str(exc))
        ) from None
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0])
        if addr not in seen:
            seen.append(addr)
    if not seen:
        raise OutboundUnreachable(N_("%(host)s does not resolve", host=host))
    return tuple(seen)


def check_url(url: str, *, allow: tuple[IPNetwork, ...] | None = None) -> Target:
    """Parse ``url``, resolve its host once and check every address; the pinned target.

    Raises :class:`OutboundRefused` (bad URL, refused address) or
    :class:`OutboundUnreachable` (the name does not resolve).
    """
    scheme, host, port, path = _split(url)
    nets = allowed_networks() if allow is None else allow
    addresses = resolve(host, port)
    for address in addresses:
        check_address(address, nets)
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        address=addresses[0],
        addresses=addresses,
    )


# --- the request --------------------------------------------------------------------------


def _pool(target: Target, timeout: urllib3.Timeout, ca_certs: str | None) -> Any:
    address = target.address.split("%", 1)[0]
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            # The certificate must be for the name in the URL, sent as SNI, although
            # the socket goes to the pinned address.
            assert_hostname=target.host,
            server_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(
        address, target.port, timeout=timeout, maxsize=1, retries=False
    )


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow: tuple[IPNetwork, ...] | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    deadline: float = DEADLINE,
    max_bytes: int = MAX_RESPONSE_BYTES,
    ca_certs: str | None = None,
) -> Response:
    """POST ``body`` to ``url`` under the rules of this module; any status is returned.

    Raises :class:`OutboundRefused`, :class:`OutboundUnreachable` or
    :class:`OutboundTimeout`; a 3xx, 4xx or 5xx is a :class:`Response`, not an error.
    """
    target = check_url(url, allow=allow)
    send_headers = {
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
        "Connection": "close",
        **dict(headers),
        "Host": target.host_header,
    }
    # ``total`` bounds connecting and reading the headers; the body's reads below shrink
    # the socket's timeout to what is left, so a receiver trickling bytes cannot hold
    # the request past ``deadline``.
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout, total=deadline)
    pool = _pool(target, timeout, ca_certs)
    started = time.monotonic()
    try:
        resp = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=send_headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
        )
        try:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            sock = getattr(getattr(resp, "connection", None), "sock", None)
            while True:
                remaining = deadline - (time.monotonic() - started)
                if remaining <= 0:
                    truncated = True
                    break
                if sock is not None:
                    sock.settimeout(min(read_timeout, remaining))
                # read1: what one receive brings, never waiting for more bytes to come.
                chunk = resp.read1(min(8192, max_bytes - size + 1))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    truncated = True
                    break
            data = b"".join(chunks)[:max_bytes]
            status = int(resp.status)
            resp_headers = {k.lower(): v for k, v in resp.headers.items()}
        finally:
            # Never drain the rest: close the connection instead.
            resp.close()
    except NewConnectionError as exc:  # a subclass of the timeout error in urllib3
        raise OutboundUnreachable(
            N_(
                "%(host)s (%(address)s): cannot connect (%(error)s)",
                host=target.host_header,
                address=target.address,
                error=str(exc),
            )
        ) from None
    except Urllib3Timeout as exc:
        raise OutboundTimeout(
            N_("%(host)s: timed out (%(error)s)", host=target.host_header, error=str(exc))
        ) from None
    except (Urllib3Error, OSError) as exc:
        raise OutboundUnreachable(
            f"{target.host_header} ({target.address}): {type(exc).__name__}: {exc}"
        ) from None
    finally:
        pool.close()
    return Response(
        status=status,
        headers=resp_headers,
        body=data,
        truncated=truncated,
        latency_ms=int((time.monotonic() - started) * 1000),
        address=target.address,
    )
