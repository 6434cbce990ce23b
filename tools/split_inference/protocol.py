"""Wire format between device and edge/cloud: [4-byte header length][JSON header][payload].

The header is a UTF-8 JSON object that states `payload_bytes`; the payload is raw bytes (an
encoded image, a compressed or raw activation, or nothing). Both lengths are bounded so a broken
or hostile peer cannot make the other side allocate without limit, and every read and write has
a timeout so neither side can hang on a silent peer.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

from edgeai.errors import EdgeAIError, UserInputError
from edgeai.tools.split_inference.link import ShapedLink

MAX_HEADER_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 32 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0
_LEN = struct.Struct(">I")


class SplitRuntimeError(EdgeAIError):
    """Base of the runtime's errors (one-line messages, exit status 2 at the CLI)."""


class EdgeUnreachableError(SplitRuntimeError):
    """The edge (or cloud) server refused the connection, or did not answer in time."""


class ProtocolError(SplitRuntimeError):
    """A frame broke the wire format: bad length, bad JSON, over a limit, cut short."""


class ConnectionClosedError(ProtocolError):
    """The peer closed the connection cleanly before a new frame began."""


class RemoteError(SplitRuntimeError):
    """The server understood the request and refused it; carries the server's one-line reason."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def encode_frame(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """The bytes of one frame; `payload_bytes` is set in the header here."""
    head = json.dumps({**header, "payload_bytes": len(payload)}, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header is {len(head)} bytes, over the {MAX_HEADER_BYTES} limit")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            f"frame payload is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} limit"
        )
    return _LEN.pack(len(head)) + head + payload


def send_frame(
    sock: socket.socket,
    header: dict[str, Any],
    payload: bytes = b"",
    link: ShapedLink | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[int, float]:
    """Send one frame (shaped by `link` if given); returns (bytes on the wire, seconds)."""
    data = encode_frame(header, payload)
    deadline = time.perf_counter() + timeout_s
    sock.settimeout(timeout_s)
    try:
        seconds = (link or ShapedLink(None)).send(sock, data, deadline)
    except TimeoutError as exc:
        raise EdgeUnreachableError(
            f"sending {len(data):,} bytes did not finish within {timeout_s:g} s"
        ) from exc
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise EdgeUnreachableError(
            f"connection closed by the peer while sending ({exc.strerror})"
        ) from exc
    return len(data), seconds


def _recv_exact(sock: socket.socket, n: int, deadline: float, what: str) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError(what)
        sock.settimeout(remaining)
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            if not buf and what == "frame length":
                raise ConnectionClosedError("the peer closed the connection without answering")
            raise ProtocolError(
                f"connection closed in the middle of the {what} ({len(buf)} of {n} bytes)"
            )
        buf += chunk
    return bytes(buf)


def recv_frame(
    sock: socket.socket,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_payload: int = MAX_PAYLOAD_BYTES,
) -> tuple[dict[str, Any], bytes, int]:
    """Read one frame within `timeout_s`; returns (header, payload, bytes on the wire).

    Raises EdgeUnreachableError on timeout or reset, ConnectionClosedError when the peer closed
    cleanly before a new frame began, ProtocolError for anything malformed.
    """
    deadline = time.perf_counter() + timeout_s
    try:
        (head_len,) = _LEN.unpack(_recv_exact(sock, _LEN.size, deadline, "frame length"))
        if head_len == 0 or head_len > MAX_HEADER_BYTES:
            raise ProtocolError(f"frame header length {head_len} is outside 1..{MAX_HEADER_BYTES}")
        raw = _recv_exact(sock, head_len, deadline, "frame header")
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError(f"frame header is not UTF-8 JSON ({exc})") from exc
        if not isinstance(header, dict):
            raise ProtocolError("frame header is not a JSON object")
        size = header.get("payload_bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(f"frame header has no valid 'payload_bytes' (got {size!r})")
        if size > max_payload:
            raise ProtocolError(f"frame payload of {size} bytes is over the {max_payload} limit")
        payload = _recv_exact(sock, size, deadline, "frame payload") if size else b""
    except TimeoutError as exc:
        raise EdgeUnreachableError(f"no complete answer within {timeout_s:g} s") from exc
    except ConnectionResetError as exc:
        raise EdgeUnreachableError("connection reset by the peer") from exc
    return header, payload, _LEN.size + head_len + size


def raise_if_error(header: dict[str, Any]) -> None:
    """An 'error' frame from the server becomes a RemoteError on the device."""
    if header.get("type") == "error":
        raise RemoteError(
            str(header.get("kind", "error")), str(header.get("message", "server error"))
        )


def parse_address(address: str | tuple[str, int], flag: str = "server") -> tuple[str, int]:
    """'HOST:PORT' or (host, port) -> (host, port), with a one-line error naming `flag`."""
    if isinstance(address, tuple) and len(address) == 2:
        host, port = address
        text = f"{host}:{port}"
    else:
        text = str(address)
        host, _, port = text.rpartition(":")
    port_text = str(port)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UserInputError(f"{flag}: expected HOST:PORT with a port in 1..65535, got '{text}'")
    return str(host).strip("[]"), int(port_text)
