"""Link emulation for a byte stream: a token bucket (rate, small burst) plus one-way propagation delay.

The device and the edge talk over a real TCP socket on 127.0.0.1, which is far faster than the
wireless link the paper measures over (50 KB/s .. 1 MB/s). Each SENDER shapes what it writes:
the device paces its uplink at the request's rate, the server paces its reply at the downlink
rate, and each waits the one-way propagation delay before a message's first byte. A message of
N bytes therefore reaches the other side delay + N / rate after the send starts, as it would on a
serial link of that rate and distance: the bucket starts each message empty, and its depth (one
MTU by default) only lets the sender catch up after the OS woke it late, so sleep overshoot does
not add up over a long message.

Rates are in bytes per second. Units accepted by `parse_rate` are decimal, as link rates are
quoted: 1 KB = 1000 B, 1 MB = 1000 KB; bit rates (kbit/s, Mbit/s, bps) are divided by 8.
"""

from __future__ import annotations

import math
import re
import socket
import time
from dataclasses import dataclass

from edgeai.errors import UserInputError
from edgeai.tools.channel import Cell

DEFAULT_BURST_BYTES = 1500  # one Ethernet MTU: small, so N bytes take ~N / rate
_UNITS: dict[str, float] = {
    "": 1.0,
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "kib": 1024.0,
    "mib": 1024.0**2,
    "gib": 1024.0**3,
    "bit": 1 / 8,
    "bps": 1 / 8,
    "kbit": 1e3 / 8,
    "kbps": 1e3 / 8,
    "mbit": 1e6 / 8,
    "mbps": 1e6 / 8,
    "gbit": 1e9 / 8,
    "gbps": 1e9 / 8,
}
_RATE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*(?:/\s*s)?\s*$")


def parse_rate(text: str | float, flag: str = "--rate") -> float:
    """'300KB/s' | '1MB/s' | '2.4Mbit/s' | '50000' -> bytes per second (KB = 1000 B).

    Raises UserInputError naming `flag` for junk, NaN, infinity and rates <= 0.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _RATE_RE.match(str(text))
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            raise UserInputError(
                f"{flag}: cannot read rate '{text}' (examples: 300KB/s, 1MB/s, 2.4Mbit/s, 50000)"
            )
        value = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value <= 0:
        raise UserInputError(f"{flag}: rate must be a finite number > 0 bytes/s, got '{text}'")
    return value


def format_rate(rate_bps: float) -> str:
    """Bytes per second as people quote link rates (decimal units)."""
    if rate_bps >= 1e6:
        return f"{rate_bps / 1e6:g}MB/s"
    if rate_bps >= 1e3:
        return f"{rate_bps / 1e3:g}KB/s"
    return f"{rate_bps:g}B/s"


@dataclass(frozen=True)
class LinkSpec:
    """One direction of an emulated link: rate (bytes/s), one-way delay (s), bucket depth (bytes)."""

    rate_bps: float
    delay_s: float = 0.0
    burst_bytes: int = DEFAULT_BURST_BYTES

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_bps) and self.rate_bps > 0):
            raise UserInputError(f"link rate must be > 0 bytes/s, got {self.rate_bps}")
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
            raise UserInputError(f"link delay must be >= 0 s, got {self.delay_s}")
        if self.burst_bytes < 1:
            raise UserInputError(f"link burst must be >= 1 byte, got {self.burst_bytes}")

    @classmethod
    def at_distance(
        cls, distance_m: float, cell: Cell | None = None, sharing: int = 1, delay_s: float = 0.0
    ) -> LinkSpec:
        """The uplink of a device `distance_m` from the base station of `cell` (the shared
        channel of tools/channel.py: mean Shannon rate, band split among `sharing` users)."""
        if not (math.isfinite(distance_m) and distance_m >= 0):
            raise UserInputError(f"distance must be >= 0 m, got {distance_m}")
        rate_bits = float((cell or Cell()).rate_bps(distance_m, sharing))
        return cls(rate_bits / 8.0, delay_s)

    def ideal_seconds(self, n_bytes: int) -> float:
        """What sending one message of n_bytes costs on this link: delay + n_bytes / rate."""
        return self.delay_s + n_bytes / self.rate_bps


class TokenBucket:
    """Tokens (bytes) refill at `rate_bps` up to `burst_bytes`; a send waits until it is covered.

    The balance may go negative: a chunk larger than the balance waits -balance / rate, and
    any oversleep refills the bucket, so sleep overshoot does not add up over many chunks.
    """

    def __init__(self, rate_bps: float, burst_bytes: int = DEFAULT_BURST_BYTES) -> None:
        self.rate_bps = float(rate_bps)
        self.burst_bytes = int(burst_bytes)
        self._tokens = float(burst_bytes)
        self._stamp = time.perf_counter()

    def reset(self) -> None:
        """Empty the bucket now: a new message starts its serialisation from zero credit."""
        self._tokens = 0.0
        self._stamp = time.perf_counter()

    def _refill(self, now: float) -> None:
        self._tokens = min(
            float(self.burst_bytes), self._tokens + (now - self._stamp) * self.rate_bps
        )
        self._stamp = now

    def take(self, n_bytes: int) -> None:
        """Block (sleeping, never spinning) until n_bytes may leave."""
        self._refill(time.perf_counter())
        self._tokens -= n_bytes
        if self._tokens < 0:
            time.sleep(-self._tokens / self.rate_bps)


def _chunk_bytes(spec: LinkSpec) -> int:
    """Send granularity: ~5 ms of link time, at least the burst, at most 64 KiB."""
    return max(spec.burst_bytes, min(64 * 1024, int(spec.rate_bps * 0.005)))


class ShapedLink:
    """One direction of a link over a connected socket: `send` paces bytes as the link would."""

    def __init__(self, spec: LinkSpec | None) -> None:
        self.spec = spec
        self._bucket = TokenBucket(spec.rate_bps, spec.burst_bytes) if spec else None

    def send(self, sock: socket.socket, data: bytes, deadline: float | None = None) -> float:
        """Write `data` shaped by the link; returns the seconds it took (perf_counter).

        `deadline` (perf_counter time) bounds the whole send; the socket's own timeout bounds
        each write. socket.timeout is raised when either runs out.
        """
        start = time.perf_counter()
        view = memoryview(data)
        if self.spec is None or self._bucket is None:
            _sendall(sock, view, deadline)
            return time.perf_counter() - start
        if self.spec.delay_s > 0:
            _sleep_until(start + self.spec.delay_s, deadline)
        self._bucket.reset()
        chunk = _chunk_bytes(self.spec)
        for offset in range(0, len(view), chunk):
            piece = view[offset : offset + chunk]
            self._bucket.take(len(piece))
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError("link send ran past its deadline")
            _sendall(sock, piece, deadline)
        return time.perf_counter() - start


def _sleep_until(when: float, deadline: float | None) -> None:
    if deadline is not None and when > deadline:
        time.sleep(max(0.0, deadline - time.perf_counter()))
        raise TimeoutError("link delay runs past the deadline")
    remaining = when - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)


def _sendall(sock: socket.socket, data: memoryview, deadline: float | None) -> None:
    if deadline is not None:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError("send ran past its deadline")
        base = sock.gettimeout()
        sock.settimeout(remaining if base is None else min(base, remaining))
        try:
            sock.sendall(data)
        finally:
            sock.settimeout(base)
    else:
        sock.sendall(data)
