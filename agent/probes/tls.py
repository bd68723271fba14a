"""TLS for the HTTP probe: the client context, and certificate expiry read from DER.

`probe_ssl_earliest_cert_expiry` is reported even when verification fails (a self-signed or
expired certificate is exactly when you want to see it): the handshake is then repeated
without verification, only to read the peer certificate, and the probe still fails.
Python 3.11 hands out the peer's leaf certificate only, so the expiry is the leaf's; on
Python ≥ 3.13 the earliest `notAfter` of the chain the peer sent is used, like blackbox_exporter.
"""

from __future__ import annotations

import calendar
import socket
import ssl

from ..config import ProbeConfig
from .base import Deadline, connect


def client_context(config: ProbeConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=config.ca_file)
    if config.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at `pos`."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(der[pos:pos + n], "big")
        pos += n
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def cert_not_after(der: bytes) -> float:
    """`notAfter` of an X.509 certificate in DER, as unix seconds (RFC 5280 §4.1)."""
    _, pos, _ = _tlv(der, 0)  # Certificate
    _, pos, _ = _tlv(der, pos)  # tbsCertificate
    if der[pos] == 0xA0:  # [0] version
        pos = _tlv(der, pos)[2]
    for _ in range(3):  # serialNumber, signature, issuer
        pos = _tlv(der, pos)[2]
    _, pos, _ = _tlv(der, pos)  # validity
    pos = _tlv(der, pos)[2]  # notBefore
    tag, start, end = _tlv(der, pos)  # notAfter
    text = der[start:end].decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSS
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSS
        raise ValueError(f"unexpected time tag {tag:#x}")
    fields = [int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
              int(text[12:14])]
    return float(calendar.timegm((*fields, 0, 0, 0)))


def earliest_expiry(tls: ssl.SSLSocket) -> float | None:
    chain = getattr(tls, "get_unverified_chain", None)  # Python ≥ 3.13
    ders: list[bytes] = []
    if chain is not None:
        ders = [c for c in (chain() or []) if isinstance(c, bytes)]
    if not ders:
        leaf = tls.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    try:
        return min(cert_not_after(d) for d in ders) if ders else None
    except (ValueError, IndexError):
        return None


def handshake(sock: socket.socket, host: str, ctx: ssl.SSLContext,
              deadline: Deadline) -> ssl.SSLSocket:
    """Wrap a connected socket; on failure the socket is closed."""
    try:
        tls = ctx.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        deadline.close(sock)
        raise
    deadline.close(sock)  # detached by wrap_socket; forget it
    try:
        deadline.watch(tls)
        tls.do_handshake()
    except BaseException:
        deadline.close(tls)
        raise
    return tls


def unverified_expiry(host: str, port: int, deadline: Deadline) -> float | None:
    """The peer certificate's expiry without verifying it (after a failed verification)."""
    sock = connect(host, port, deadline)
    tls = handshake(sock, host, _unverified_context(), deadline)
    try:
        return earliest_expiry(tls)
    finally:
        deadline.close(tls)
