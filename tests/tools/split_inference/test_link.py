"""Link emulation (rate parsing, token-bucket + delay timing over real sockets) and the frame protocol."""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
import time

import pytest
from edgeai.errors import EdgeAIError, UserInputError
from edgeai.tools.split_inference.link import (
    LinkSpec,
    ShapedLink,
    TokenBucket,
    format_rate,
    parse_rate,
)
from edgeai.tools.split_inference.protocol import (
    ConnectionClosedError,
    EdgeUnreachableError,
    ProtocolError,
    encode_frame,
    recv_frame,
    send_frame,
)

# ----------------------------------------------------------------------------- rate parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300KB/s", 300_000.0),
        ("1MB/s", 1_000_000.0),
        ("2.4Mbit/s", 300_000.0),
        ("50000", 50_000.0),
        ("50 KB/s", 50_000.0),
        ("0.5mb/s", 500_000.0),
        ("64KiB/s", 65_536.0),
        ("8000bps", 1_000.0),
        ("1e3KB/s", 1_000_000.0),
        (12_345, 12_345.0),
    ],
)
def test_parse_rate_units(text: str, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["0", "0KB/s", "-5KB/s", "nan", "inf", "abc", "", "5 furlongs/s", "1e400", "KB/s"]
)
def test_parse_rate_rejects_junk_and_non_positive(text: str) -> None:
    with pytest.raises(UserInputError, match="--uplink"):
        parse_rate(text, flag="--uplink")


def test_parse_rate_rejects_nan_and_negative_numbers() -> None:
    for value in (math.nan, -1.0, 0, math.inf):
        with pytest.raises(UserInputError, match="--rate"):
            parse_rate(value)


def test_format_rate_round_trips() -> None:
    for rate in (50_000.0, 300_000.0, 1_000_000.0, 2_500_000.0, 512.0):
        assert parse_rate(format_rate(rate)) == pytest.approx(rate)


def test_link_spec_validates() -> None:
    for bad in ({"rate_bps": 0}, {"rate_bps": math.nan}, {"rate_bps": 1e3, "delay_s": -1}):
        with pytest.raises(UserInputError):
            LinkSpec(**bad)


# ----------------------------------------------------------------------------- link timing


def _timed_transfer(spec: LinkSpec | None, n_bytes: int) -> tuple[float, float, bytes]:
    """Send n_bytes through the shaped link over a real socket pair; (first byte, last byte, data)."""
    a, b = socket.socketpair()
    received = bytearray()
    first: list[float] = []

    def drain() -> None:
        b.settimeout(10)
        while len(received) < n_bytes:
            chunk = b.recv(1 << 16)
            if not chunk:
                break
            if not first:
                first.append(time.perf_counter())
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    payload = bytes(range(256)) * (n_bytes // 256) + bytes(n_bytes % 256)
    start = time.perf_counter()
    ShapedLink(spec).send(a, payload)
    reader.join(10)
    last = time.perf_counter()
    a.close()
    b.close()
    assert bytes(received) == payload
    return first[0] - start, last - start, bytes(received)


def test_n_bytes_at_rate_r_take_n_over_r_plus_delay() -> None:
    # Prepare: 60 kB at 300 KB/s with a 50 ms one-way delay.
    spec = LinkSpec(rate_bps=300_000.0, delay_s=0.05)
    ideal = 0.05 + 60_000 / 300_000.0  # 0.25 s
    # Execute
    first, total, _ = _timed_transfer(spec, 60_000)
    # Assert: never early (how late depends on the machine's load: no upper bound here).
    assert first >= 0.05 - 1e-3
    assert total >= ideal - 0.01
    assert spec.ideal_seconds(60_000) == pytest.approx(ideal)


def test_slow_link_and_fast_link_scale_with_rate() -> None:
    slow = _timed_transfer(LinkSpec(rate_bps=50_000.0), 10_000)[1]  # 0.2 s
    fast = _timed_transfer(LinkSpec(rate_bps=2_000_000.0), 400_000)[1]  # 0.2 s
    assert slow >= 0.2 - 0.01
    assert fast >= 0.2 - 0.01


def test_small_message_pays_delay_plus_its_own_bytes() -> None:
    # 1000 B at 50 KB/s: 20 ms of serialisation after the 20 ms delay, even below the burst.
    _, total, _ = _timed_transfer(LinkSpec(rate_bps=50_000.0, delay_s=0.02), 1000)
    assert total >= 0.04 - 2e-3


def test_unshaped_link_delivers_everything() -> None:
    _, _, received = _timed_transfer(None, 1_000_000)
    assert len(received) == 1_000_000


def test_token_bucket_sleeps_instead_of_spinning() -> None:
    bucket = TokenBucket(rate_bps=100_000.0, burst_bytes=1000)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(20):
        bucket.take(1000)  # 19 kB beyond the burst at 100 kB/s: ~0.19 s
    wall = time.perf_counter() - wall0
    assert wall >= 0.18  # paced (no upper bound: a loaded machine only makes it slower)
    assert time.process_time() - cpu0 < 0.5 * wall


# ----------------------------------------------------------------------------- framing


def test_frame_round_trip_counts_wire_bytes() -> None:
    a, b = socket.socketpair()
    with a, b:
        payload = bytes(range(256)) * 40
        sent, _ = send_frame(a, {"type": "infer", "task": "classify"}, payload, timeout_s=5)
        header, got, wire = recv_frame(b, timeout_s=5)
    assert got == payload
    assert header["type"] == "infer" and header["payload_bytes"] == len(payload)
    head = json.dumps(
        {"type": "infer", "task": "classify", "payload_bytes": len(payload)}, separators=(",", ":")
    ).encode()
    assert sent == wire == 4 + len(head) + len(payload)
    assert encode_frame({"a": 1}) == struct.pack(">I", len(b'{"a":1,"payload_bytes":0}')) + (
        b'{"a":1,"payload_bytes":0}'
    )


def test_frame_through_a_shaped_link_is_paced() -> None:
    a, b = socket.socketpair()
    with a, b:
        done: list[float] = []

        def read() -> None:
            recv_frame(b, timeout_s=5)
            done.append(time.perf_counter())

        t = threading.Thread(target=read)
        t.start()
        start = time.perf_counter()
        n, seconds = send_frame(a, {"k": 1}, bytes(30_000), ShapedLink(LinkSpec(200_000.0, 0.01)))
        t.join(5)
    ideal = 0.01 + n / 200_000.0
    assert done[0] - start >= ideal - 0.01
    assert seconds <= done[0] - start + 0.01


def _raw_pair(data: bytes, close: bool = True) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.sendall(data)
    if close:
        a.close()
    return a, b


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (struct.pack(">I", 0), "header length"),
        (struct.pack(">I", 10_000_000), "header length"),
        (struct.pack(">I", 5) + b"nope!", "not UTF-8 JSON"),
        (struct.pack(">I", 2) + b"[]", "not a JSON object"),
        (struct.pack(">I", 2) + b"{}", "payload_bytes"),
        (struct.pack(">I", 20) + b'{"payload_bytes":-1}', "payload_bytes"),
        (struct.pack(">I", 21) + b'{"payload_bytes":500}' + b"x" * 10, "payload"),
        (struct.pack(">I", 40) + b"{", "closed in the middle"),
        (b"\x00\x00", "closed in the middle"),
    ],
)
def test_bad_frames_raise_protocol_error(data: bytes, match: str) -> None:
    _a, b = _raw_pair(data)
    with b, pytest.raises(ProtocolError, match=match):
        recv_frame(b, timeout_s=2)


def test_payload_over_the_limit_is_refused_before_reading_it() -> None:
    a, b = _raw_pair(encode_frame({"t": 1}, bytes(5000)), close=False)
    with a, b, pytest.raises(ProtocolError, match="over the 1000 limit"):
        recv_frame(b, timeout_s=2, max_payload=1000)


def test_silent_peer_times_out_and_clean_close_is_typed() -> None:
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(EdgeUnreachableError, match="within 0.3 s"):
            recv_frame(b, timeout_s=0.3)
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(ConnectionClosedError):
            recv_frame(b, timeout_s=1)


def test_errors_are_edgeai_errors_with_one_line_messages() -> None:
    for exc in (EdgeUnreachableError("x"), ProtocolError("y"), ConnectionClosedError("z")):
        assert isinstance(exc, EdgeAIError)
    _a, b = _raw_pair(struct.pack(">I", 5) + b"nope!")
    with b, pytest.raises(ProtocolError) as info:
        recv_frame(b, timeout_s=2)
    assert "\n" not in str(info.value)
