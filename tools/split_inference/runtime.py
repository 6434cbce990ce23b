"""Device / edge / cloud runtime: real bytes over TCP on 127.0.0.1 through an emulated link.

The device (`DeviceClient.infer`) and the server (`EdgeServer` in a thread, or blocking with
`serve_until_interrupted`) run their parts of a task's SplitModel for real and exchange real
frames (`protocol`) over a socket whose every byte is paced by the emulated link (`link`).
Schemes (paper Table II and Fig. 3):

- "coinfer": the device runs stages [0, k) and compresses the activation with the learned feature
  codec (`codec.FeatureCodec`, k is the codec's split point); the edge decompresses and finishes.
- "split-raw": the same split with the activation sent as raw float16 (no codec).
- "edge-lossless": the device sends a PNG of the photo; the edge runs the whole model.
- "edge-lossy": the device sends a JPEG/WebP (a fixed quality, or the best one within a byte budget).
- "client-only": the whole model on the device; nothing is sent.
- "cloud": a server started with role "cloud", far away (one-way delay 150 ms by default): the
  device first sends the request text for the cloud to plan (one extra round trip, as in the
  paper's cloud-only baseline where the cloud does the task planning too), then the PNG photo.

Two latencies per request, side by side, never max() of the two (issue 33):
- measured (`InferenceResult.seconds`, `.breakdown`): this machine's real compute on both sides
  and the real socket, whose bytes are paced by the emulated link (rate and one-way delay);
- emulated (`.emulated_s`, `.emulated`): the cost model alone, from the same request's bytes on
  the wire: compute_seconds(model_id, start, stop, head, role) for each side's model part (any
  callable, e.g. partition.py's cost model from per-stage profiles and the manuals' compute_hz;
  without one, the measured compute stands in), delay + bytes / rate for each hop, and the
  cloud's planning time. Image encoding on the device has no cost-model entry, so its measured
  time is in both.
Compute is never slept to: a loaded host shows up in the measured figure only. Every socket operation has a timeout; an edge that is not there
fails in under connect_timeout_s (3 s by default) with EdgeUnreachableError.

Each request opens its own TCP connection; its set-up on 127.0.0.1 is not charged any emulated
delay (a device keeps its link to the edge up), so a request's latency is device compute +
uplink (delay + bytes / rate) + server compute + downlink (delay + bytes / downlink rate).
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch
from edgeai.errors import EdgeAIError, UserInputError
from edgeai.tools.split_inference import IMAGENET_TASK, RUNTIME_TASKS
from edgeai.tools.split_inference.base import SplitModel
from edgeai.tools.split_inference.imagecodecs import (
    decode_image,
    encode_lossy,
    encode_png,
    encode_to_budget,
    resize_square,
)
from edgeai.tools.split_inference.link import LinkSpec, ShapedLink, format_rate
from edgeai.tools.split_inference.protocol import (
    DEFAULT_TIMEOUT_S,
    MAX_PAYLOAD_BYTES,
    ConnectionClosedError,
    EdgeUnreachableError,
    ProtocolError,
    RemoteError,
    SplitRuntimeError,
    encode_frame,
    parse_address,
    raise_if_error,
    recv_frame,
    send_frame,
)

log = logging.getLogger(__name__)

Scheme = Literal["coinfer", "split-raw", "edge-lossless", "edge-lossy", "client-only", "cloud"]
SCHEMES: tuple[Scheme, ...] = (
    "coinfer",
    "split-raw",
    "edge-lossless",
    "edge-lossy",
    "client-only",
    "cloud",
)
EDGE_SCHEMES: tuple[Scheme, ...] = ("coinfer", "split-raw", "edge-lossless", "edge-lossy")
Role = Literal["device", "edge", "cloud"]
ComputeSeconds = Callable[[str, int, int, bool, str], float]
"""compute_seconds(model_id, start, stop, head, role) -> emulated seconds of stages [start, stop)
(+ the head when `head`) on `role`'s hardware."""

DEFAULT_CLOUD_ONE_WAY_S = 0.150
DEFAULT_CONNECT_TIMEOUT_S = 3.0
DEFAULT_IDLE_TIMEOUT_S = 60.0
DEFAULT_LOSSY_QUALITY = 75
PROTOCOL_VERSION = 1


class UnknownSchemeError(UserInputError):
    """A scheme name that the runtime does not know."""


def load_task_model(task: str, checkpoint_dir: str | Path | None = None) -> SplitModel:
    """The task's photo model (shipped weights, or <checkpoint_dir>/<task>.pt), eval mode;
    task 'imagenet' is the pretrained EfficientNet-Lite0 (weights from its package)."""
    check_task(task)
    if task == IMAGENET_TASK:
        from edgeai.tools.split_inference.effnet import load_effnet

        return load_effnet()
    from edgeai.tools.split_inference.models import load_model

    return load_model(task, checkpoint_dir)  # type: ignore[arg-type]


def load_task_codecs(task: str) -> list[Any]:
    """Every shipped codec of a task (one per split point), the default first."""
    from edgeai.tools.split_inference.codec import task_codec_paths

    check_task(task)
    return [load_task_codec(path=p) for p in task_codec_paths(task)]


CodecTable = dict[str, dict[int, Any]]


def codec_table(codecs: Mapping[str, Any] | None) -> CodecTable:
    """task -> {split point: codec}, from task -> codec or task -> [codecs] (default first)."""
    table: CodecTable = {}
    for task, value in (codecs or {}).items():
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        table[task] = {}
        for codec in items:
            table[task].setdefault(int(codec.meta.split), codec)
    return table


def load_task_codec(task: str | None = None, path: str | Path | None = None) -> Any:
    """A feature codec from `path`, else the task's shipped default codec."""
    from edgeai.tools.split_inference.codec import default_codec_path, load_codec

    if path is None:
        if task is None:
            raise UserInputError("load_task_codec needs a task or a path")
        check_task(task)
        path = default_codec_path(task)
    return load_codec(path)


# -- results ---------------------------------------------------------------------------------


@dataclass
class Breakdown:
    """Where the end-to-end seconds went (measured on the device with time.perf_counter).

    plan_s is the cloud scheme's extra planning round trip; downlink_s is the wait for the reply
    minus the server's reported compute time (so it holds the downlink delay and pacing).
    """

    device_s: float = 0.0
    uplink_s: float = 0.0
    server_s: float = 0.0
    downlink_s: float = 0.0
    plan_s: float = 0.0


@dataclass
class InferenceResult:
    """One answered request: the answer, the bytes that crossed the link, the measured time."""

    answer: str
    task: str
    scheme: str
    bytes_up: int  # every byte the device wrote to the socket (frame lengths, headers, payloads)
    bytes_down: int  # every byte the device read from it
    payload_bytes: int  # the image / activation payload alone (paper Table II's cost)
    seconds: float  # end to end, from the image array in hand to the answer in hand
    breakdown: Breakdown = field(default_factory=Breakdown)
    split: int = 0  # k: device ran stages [0, k)
    quality: int | None = None  # JPEG/WebP quality for edge-lossy
    server_role: str | None = None

    emulated_s: float = 0.0  # the cost model's end-to-end seconds for the same bytes
    emulated: Breakdown = field(default_factory=Breakdown)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- helpers shared by both sides ------------------------------------------------------------


def infer_header(
    scheme: str,
    task: str,
    model_id: str,
    question: str | None,
    split: int = 0,
    downlink_rate_bps: float = 1e6,
    one_way_delay_s: float = 0.010,
    shape: list[int] | None = None,
) -> dict[str, Any]:
    """The header of a device's infer frame (the client sends exactly this; the benchmark counts
    its bytes on the wire with `protocol.encode_frame`)."""
    header: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "type": "infer",
        "scheme": scheme,
        "task": task,
        "model_id": model_id,
        "question": question,
    }
    if shape is not None:
        header["shape"] = shape
    header.update(split=split, downlink_rate_bps=downlink_rate_bps, one_way_delay_s=one_way_delay_s)
    return header


def wire_bytes(header: dict[str, Any], payload: bytes) -> int:
    """Bytes of one frame on the wire: length prefix, JSON header, payload."""
    return len(encode_frame(header, payload))


def check_task(task: str) -> None:
    if task not in RUNTIME_TASKS:
        raise UserInputError(f"unknown task '{task}' (choose from {', '.join(RUNTIME_TASKS)})")


def check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise UnknownSchemeError(f"unknown scheme '{scheme}' (choose from {', '.join(SCHEMES)})")


def _check_positive(value: float, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number <= 0:
        raise UserInputError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def _check_non_negative(value: float, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise UserInputError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _emulated(
    compute: ComputeSeconds | None,
    model_id: str,
    start: int,
    stop: int,
    head: bool,
    role: str,
    measured: float = 0.0,
) -> float:
    """The cost model's seconds for stages [start, stop) (+ head) on `role`; `measured` where
    there is no cost model."""
    if compute is None:
        return measured
    seconds = float(compute(model_id, start, stop, head, role))
    if not math.isfinite(seconds) or seconds < 0:
        raise EdgeAIError(
            f"compute_seconds({model_id!r}, {start}, {stop}, {head}, {role!r}) gave {seconds}"
        )
    return seconds


def raw_activation_bytes(h: torch.Tensor) -> bytes:
    """An activation as little-endian float16 (split-raw's payload)."""
    return h.detach().to(torch.float16).cpu().numpy().astype("<f2").tobytes()


def raw_activation_from_bytes(data: bytes, shape: list[int]) -> torch.Tensor:
    """Inverse of raw_activation_bytes given the shape from the frame header."""
    if not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ProtocolError(f"raw activation needs a positive integer shape, got {shape!r}")
    expected = 2 * math.prod(shape)
    if len(data) != expected:
        raise ProtocolError(
            f"raw activation of shape {shape} needs {expected} bytes, got {len(data)}"
        )
    array = np.frombuffer(data, dtype="<f2").reshape(shape)
    return torch.from_numpy(array.astype(np.float32))


def _model_for(models: Mapping[str, SplitModel], task: str, where: str) -> SplitModel:
    check_task(task)
    model = models.get(task)
    if model is None:
        raise UserInputError(
            f"the {where} hosts no model for task '{task}' (has: {sorted(models)})"
        )
    return model


def _codec_for(codecs: CodecTable, task: str, where: str, k: int | None = None) -> Any:
    """The codec at split k (None: the task's default, its first)."""
    at = codecs.get(task)
    if not at:
        raise UserInputError(
            f"the {where} has no feature codec for task '{task}' (scheme coinfer needs one; "
            "split-raw sends the activation uncompressed)"
        )
    if k is None:
        return next(iter(at.values()))
    if k not in at:
        raise UserInputError(
            f"the {where} has no feature codec for '{task}' at split {k} "
            f"(its codecs sit at k={', '.join(str(x) for x in at)})"
        )
    return at[k]


def _check_codec(codec: Any, model: SplitModel, task: str, where: str) -> None:
    """A codec trained for another model or task would decode into nonsense: refuse it."""
    meta = codec.meta
    if meta.model_id != model.model_id or meta.task != task:
        raise UserInputError(
            f"the {where}'s feature codec for '{task}' was trained for {meta.model_id}/{meta.task}, "
            f"not {model.model_id}/{task}"
        )
    if not 1 <= int(meta.split) <= model.n_stages:
        raise UserInputError(
            f"the {where}'s feature codec sits at split {meta.split}, outside 1..{model.n_stages}"
        )


# -- the server ------------------------------------------------------------------------------


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        owner = self.server.owner
        owner._track(sock, add=True)
        try:
            while not owner.stopping:
                try:
                    header, payload, _ = recv_frame(
                        sock, timeout_s=owner.idle_timeout_s, max_payload=owner.max_payload
                    )
                except ConnectionClosedError:
                    return
                except EdgeUnreachableError as exc:
                    log.debug("connection from %s ended: %s", self.client_address, exc)
                    return
                except ProtocolError as exc:
                    log.warning("bad frame from %s: %s", self.client_address, exc)
                    self._reply_error(sock, "ProtocolError", str(exc), None)
                    return
                received = time.perf_counter()
                down: LinkSpec | None = None
                try:
                    down = _downlink_of(header)
                    reply = owner.handle_request(header, payload, received)
                except (EdgeAIError, ValueError, TypeError) as exc:
                    log.info("refused a request from %s: %s", self.client_address, exc)
                    self._reply_error(sock, type(exc).__name__, str(exc), down)
                    continue
                except Exception as exc:  # the API edge: log the traceback, tell the device
                    log.exception("request from %s failed", self.client_address)
                    message = f"internal error on the {owner.role}: {type(exc).__name__}: {exc}"
                    self._reply_error(sock, "InternalError", message, down)
                    continue
                send_frame(sock, reply, b"", ShapedLink(down), timeout_s=owner.idle_timeout_s)
        except (EdgeUnreachableError, OSError) as exc:
            log.debug("connection from %s dropped: %s", self.client_address, exc)
        finally:
            owner._track(sock, add=False)

    def _reply_error(
        self, sock: socket.socket, kind: str, message: str, down: LinkSpec | None
    ) -> None:
        first = (message.splitlines() or [""])[0][:500] or f"{kind} on the server"
        header = {"type": "error", "kind": kind, "message": first}
        try:
            send_frame(sock, header, b"", ShapedLink(down), timeout_s=5.0)
        except (SplitRuntimeError, OSError) as exc:
            log.debug("could not send the error reply: %s", exc)


def _downlink_of(header: dict[str, Any]) -> LinkSpec | None:
    """The downlink the device asked for (rate, one-way delay); None = unshaped."""
    rate = header.get("downlink_rate_bps")
    if rate is None:
        return None
    delay = header.get("one_way_delay_s", 0.0)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (rate, delay)):
        raise ProtocolError(f"downlink rate {rate!r} and one-way delay {delay!r} must be numbers")
    return LinkSpec(float(rate), float(delay))


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], owner: EdgeServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class EdgeServer:
    """An edge (or cloud) server: finishes the task's model on what the device sends.

    models: task -> SplitModel (the same networks the device holds), codecs: task -> FeatureCodec
    or a list of them at different split points (needed for "coinfer" only; the device's split
    point picks one), compute: emulated compute time (see module docstring), role:
    "edge" serves the edge schemes, "cloud" serves the cloud scheme (planning + whole model).
    Port 0 picks a free port (see `address`). Use as a context manager or start()/stop().
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Mapping[str, SplitModel] | None = None,
        codecs: Mapping[str, Any] | None = None,
        compute: ComputeSeconds | None = None,
        role: Literal["edge", "cloud"] = "edge",
        plan_seconds: float = 0.0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        max_payload: int | None = None,
    ) -> None:
        if role not in ("edge", "cloud"):
            raise UserInputError(f"unknown server role '{role}' (choose from edge, cloud)")
        if not models:
            raise UserInputError("an edge server needs at least one model")
        for task in models:
            check_task(task)
        self.models = dict(models)
        self.codecs = codec_table(codecs)
        self.compute = compute
        self.role = role
        self.plan_seconds = _check_non_negative(plan_seconds, "plan_seconds")
        self.idle_timeout_s = idle_timeout_s
        self.max_payload = max_payload or MAX_PAYLOAD_BYTES
        self.stopping = False
        self._lock = threading.Lock()  # one request computes at a time (one accelerator)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        try:
            self._tcp = _TCPServer((host, port), self)
        except OSError as exc:
            raise UserInputError(f"cannot listen on {host}:{port} ({exc.strerror})") from exc

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._tcp.server_address[:2]
        return str(host), int(port)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(sock)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        """Serve in a daemon thread (tests, benchmarks)."""
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        log.info("%s server listening on %s:%d", self.role, *self.address)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until stop() (from another thread) or KeyboardInterrupt."""
        self._tcp.serve_forever(poll_interval=0.1)

    def serve_until_interrupted(
        self, on_ready: Callable[[tuple[str, int]], None] | None = None
    ) -> None:
        """Serve until Ctrl-C or SIGTERM (blocking; the CLI's serve-edge); `on_ready` gets the
        bound address."""
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C and SIGTERM stop the server even from a shell that ignores SIGINT.
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, _interrupt)
        log.info("%s server listening on %s:%d", self.role, *self.address)
        try:
            if on_ready is not None:
                on_ready(self.address)
            self.serve_forever()
        except KeyboardInterrupt:
            log.info("%s server on %s:%d stopped", self.role, *self.address)
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def stop(self) -> None:
        """Stop accepting, close open connections, release the port."""
        self.stopping = True
        if self._thread is not None:
            self._tcp.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer
        self._tcp.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests ----------------------------------------------------------------------------
    def handle_request(
        self, header: dict[str, Any], payload: bytes, received: float
    ) -> dict[str, Any]:
        """One request frame -> the reply header (raises EdgeAIError for requests it refuses)."""
        kind = header.get("type")
        if header.get("version") != PROTOCOL_VERSION:
            raise ProtocolError(
                f"protocol version {header.get('version')!r}, this server speaks {PROTOCOL_VERSION}"
            )
        if kind == "plan":
            return self._plan(header, received)
        if kind == "infer":
            return self._infer(header, payload, received)
        raise ProtocolError(f"unknown request type {kind!r} (expected 'plan' or 'infer')")

    def _plan(self, header: dict[str, Any], received: float) -> dict[str, Any]:
        """The cloud's planning step: read the request text, name the task's model."""
        if self.role != "cloud":
            raise UserInputError(
                "this is an edge server: planning (scheme 'cloud') needs a server started "
                "with role 'cloud'"
            )
        text = header.get("request")
        if not isinstance(text, str) or not text.strip():
            raise UserInputError("a plan request needs the request text")
        task = header.get("task")
        model = _model_for(self.models, str(task), "cloud")
        return {
            "type": "plan",
            "task": task,
            "model_id": model.model_id,
            "server_s": time.perf_counter() - received,
            "plan_emulated_s": self.plan_seconds,
        }

    def _infer(self, header: dict[str, Any], payload: bytes, received: float) -> dict[str, Any]:
        scheme = str(header.get("scheme"))
        check_scheme(scheme)
        if scheme == "client-only":
            raise UserInputError("scheme 'client-only' runs on the device, not on a server")
        if self.role == "cloud" and scheme != "cloud":
            raise UserInputError(
                f"this is a cloud server: scheme '{scheme}' needs an edge server (role 'edge')"
            )
        if self.role == "edge" and scheme == "cloud":
            raise UserInputError(
                "this is an edge server: scheme 'cloud' needs a server started with role 'cloud'"
            )
        task = str(header.get("task"))
        model = _model_for(self.models, task, self.role)
        if header.get("model_id") not in (None, model.model_id):
            raise UserInputError(
                f"device runs model '{header.get('model_id')}' but the {self.role} serves "
                f"'{model.model_id}' for task '{task}'"
            )
        question = header.get("question")
        if task == "vqa" and (not isinstance(question, str) or not question.strip()):
            raise UserInputError("task vqa needs a question")
        questions = [question if task == "vqa" else None]
        k = int(header.get("split", 0))
        if not 0 <= k <= model.n_stages:
            raise UserInputError(
                f"split point {k} outside 0..{model.n_stages} for {model.model_id}"
            )
        codec = None
        if scheme == "coinfer":
            codec = _codec_for(self.codecs, task, self.role, k)
            _check_codec(codec, model, task, self.role)
        with self._lock:
            started = time.perf_counter()
            with torch.no_grad():
                if scheme in ("edge-lossless", "edge-lossy", "cloud"):
                    image = decode_image(payload, source="received image")
                    h = model.preprocess(image[None])
                    k = 0
                elif scheme == "split-raw":
                    h = raw_activation_from_bytes(payload, header.get("shape"))
                else:  # coinfer (the codec at the device's split k)
                    h = codec.decompress(payload)
                try:
                    answer = model.predict_from(h, k, questions)[0]
                except RuntimeError as exc:
                    raise ProtocolError(
                        f"the activation does not fit {model.model_id} at split {k}: "
                        f"{str(exc).splitlines()[0]}"
                    ) from exc
            real = time.perf_counter() - started
        emulated = _emulated(self.compute, model.model_id, k, model.n_stages, True, self.role, real)
        return {
            "type": "answer",
            "answer": answer,
            "server_s": time.perf_counter() - received,
            "compute_s": real,
            "compute_emulated_s": emulated,
            "role": self.role,
            "model_id": model.model_id,
        }


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


# -- the device ------------------------------------------------------------------------------


def _default_request_text(task: str, question: str | None) -> str:
    if task == "vqa":
        return f"Look at my photo and answer: {question}"
    if task == "caption":
        return "Describe this photo in a sentence."
    return "What is the main object in this photo?"


class DeviceClient:
    """The device: holds its copies of the models (and codecs), talks to one edge and one cloud.

    models/codecs: task -> SplitModel / FeatureCodec (or a list of codecs at different split
    points, the default first); tasks missing from them are loaded on first use from the shipped
    checkpoints (models.load_model, every shipped codec of the task).
    """

    def __init__(
        self,
        models: Mapping[str, SplitModel] | None = None,
        codecs: Mapping[str, Any] | None = None,
        compute: ComputeSeconds | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.models: dict[str, SplitModel] = dict(models or {})
        self.codecs: CodecTable = codec_table(codecs)
        self.compute = compute
        self.connect_timeout_s = _check_positive(connect_timeout_s, "connect_timeout_s")
        self.timeout_s = _check_positive(timeout_s, "timeout_s")

    def model(self, task: str) -> SplitModel:
        check_task(task)
        if task not in self.models:
            self.models[task] = load_task_model(task)
        return self.models[task]

    def codec(self, task: str, split: int | None = None) -> Any:
        """The codec at `split` (None: the task's default); shipped ones load on first use."""
        check_task(task)
        if task not in self.codecs:
            self.codecs.update(codec_table({task: load_task_codecs(task)}))
        return _codec_for(self.codecs, task, "device", split)

    def infer(
        self,
        image: np.ndarray | bytes,
        task: str,
        scheme: str,
        rate_bps: float,
        question: str | None = None,
        server: tuple[str, int] | str | None = None,
        *,
        one_way_delay_s: float = 0.010,
        downlink_rate_bps: float | None = None,
        split: int | None = None,
        lossy_format: str = "jpeg",
        quality: int | None = None,
        max_bytes: int | None = None,
        lossy_side: int | None = None,
        cloud: tuple[str, int] | str | None = None,
        cloud_one_way_s: float = DEFAULT_CLOUD_ONE_WAY_S,
        request_text: str | None = None,
    ) -> InferenceResult:
        """Answer one request with `scheme` (see module docstring); measures it end to end.

        image: H x W x 3 uint8 array, or encoded PNG/JPEG/WebP bytes. rate_bps: uplink bytes/s;
        the downlink defaults to twice that. one_way_delay_s: device <-> edge propagation (half
        the RTT); the cloud scheme uses cloud_one_way_s instead, and `cloud` (else `server`) as
        the cloud's address. split: k; coinfer uses the codec at k (default: the task's default
        codec), split-raw defaults to the default codec's split point, else 1.
        edge-lossy: `max_bytes` picks the best quality within that budget, else `quality` (75);
        `lossy_side` resizes the photo to that square side first (e.g. the model's input size).
        """
        check_task(task)
        check_scheme(scheme)
        rate = _check_positive(rate_bps, "rate")
        down_rate = _check_positive(
            downlink_rate_bps if downlink_rate_bps is not None else 2 * rate, "downlink rate"
        )
        delay = _check_non_negative(one_way_delay_s, "one-way delay")
        cloud_delay = _check_non_negative(cloud_one_way_s, "cloud one-way delay")
        if task == "vqa" and (question is None or not str(question).strip()):
            raise UserInputError("task vqa needs a question (--question)")
        if task != "vqa":
            question = None
        if isinstance(image, (bytes, bytearray, memoryview)):
            image = decode_image(bytes(image))
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise UserInputError(
                f"expected an H x W x 3 image, got {getattr(image, 'shape', type(image).__name__)}"
            )
        if image.dtype != np.uint8:
            raise UserInputError(f"expected a uint8 image, got dtype {image.dtype}")
        model = self.model(task)
        codec = None
        if scheme == "coinfer":
            codec = self.codec(task, split)
            _check_codec(codec, model, task, "device")
        is_cloud = scheme == "cloud"
        address: tuple[str, int] | None = None
        if scheme != "client-only":
            target = (cloud or server) if is_cloud else server
            if target is None:
                raise UserInputError(f"scheme '{scheme}' needs a server address (host, port)")
            address = parse_address(target, "cloud" if is_cloud else "edge")

        started = time.perf_counter()
        if scheme == "client-only":
            return self._client_only(model, image, task, question, started)
        header = infer_header(scheme, task, model.model_id, question)
        used_quality: int | None = None
        k = 0
        with torch.no_grad():
            if scheme in ("coinfer", "split-raw"):
                if scheme == "coinfer":
                    k = int(codec.meta.split)
                else:
                    k = split if split is not None else self._default_split(task, model)
                if not 1 <= k <= model.n_stages:
                    raise UserInputError(
                        f"split point {k} outside 1..{model.n_stages} for {model.model_id}"
                    )
                h = model.features(image[None], k)
                if scheme == "coinfer":
                    payload = codec.compress(h)
                else:
                    payload = raw_activation_bytes(h)
                    header["shape"] = list(h.shape)
                device_s = time.perf_counter() - started
                device_emulated = _emulated(
                    self.compute, model.model_id, 0, k, False, "device", device_s
                )
            elif scheme == "edge-lossy":
                if lossy_side is not None:
                    image = resize_square(image, int(lossy_side))
                if max_bytes is not None:
                    enc = encode_to_budget(image, int(max_bytes), lossy_format)
                    payload, used_quality = enc.data, enc.quality
                else:
                    used_quality = DEFAULT_LOSSY_QUALITY if quality is None else int(quality)
                    payload = encode_lossy(image, lossy_format, used_quality)
                device_s = device_emulated = time.perf_counter() - started
            else:  # edge-lossless, cloud
                payload = encode_png(image)
                device_s = device_emulated = time.perf_counter() - started
        log.debug("device part of %s/%s: %.3f s (emulated %.3f s)", task, scheme, device_s, device_emulated)
        assert address is not None
        hop_delay = cloud_delay if is_cloud else delay
        header.update(split=k, downlink_rate_bps=down_rate, one_way_delay_s=hop_delay)
        up = LinkSpec(rate, hop_delay)
        needed = device_s + up.ideal_seconds(len(payload)) + (2 * hop_delay if is_cloud else 0)
        if needed > self.timeout_s:
            raise UserInputError(
                f"sending {len(payload):,} bytes at {format_rate(rate)} takes ~{needed:.1f} s, "
                f"over the {self.timeout_s:g} s timeout (raise the timeout or the rate)"
            )
        deadline = started + self.timeout_s
        breakdown = Breakdown(device_s=device_s)
        emulated = Breakdown(device_s=device_emulated)
        down = LinkSpec(down_rate, hop_delay)
        bytes_up = bytes_down = 0
        reply_role: str | None = None
        with self._connect(address) as sock:
            uplink = ShapedLink(up)
            if is_cloud:
                t0 = time.perf_counter()
                plan = {
                    "version": PROTOCOL_VERSION,
                    "type": "plan",
                    "task": task,
                    "request": request_text or _default_request_text(task, question),
                    "downlink_rate_bps": down_rate,
                    "one_way_delay_s": hop_delay,
                }
                n_up, _ = send_frame(sock, plan, b"", uplink, timeout_s=_left(deadline, address))
                reply, _, n_down = recv_frame(sock, timeout_s=_left(deadline, address))
                bytes_up, bytes_down = bytes_up + n_up, bytes_down + n_down
                raise_if_error(reply)
                if reply.get("type") != "plan":
                    raise ProtocolError(f"expected a plan reply, got {reply.get('type')!r}")
                breakdown.plan_s = time.perf_counter() - t0
                emulated.plan_s = (
                    up.ideal_seconds(n_up)
                    + float(reply.get("plan_emulated_s", 0.0))
                    + down.ideal_seconds(n_down)
                )
            n_up, breakdown.uplink_s = send_frame(
                sock, header, payload, uplink, timeout_s=_left(deadline, address)
            )
            sent = time.perf_counter()
            reply, _, n_down = recv_frame(sock, timeout_s=_left(deadline, address))
            done = time.perf_counter()
            bytes_up, bytes_down = bytes_up + n_up, bytes_down + n_down
        raise_if_error(reply)
        if reply.get("type") != "answer" or not isinstance(reply.get("answer"), str):
            raise ProtocolError(f"expected an answer frame, got {reply.get('type')!r}")
        server_s = float(reply.get("server_s", 0.0))
        breakdown.server_s = server_s
        breakdown.downlink_s = max(0.0, done - sent - server_s)
        emulated.uplink_s = up.ideal_seconds(n_up)
        emulated.server_s = float(reply.get("compute_emulated_s", server_s))
        emulated.downlink_s = down.ideal_seconds(n_down)
        reply_role = reply.get("role")
        return InferenceResult(
            answer=reply["answer"],
            task=task,
            scheme=scheme,
            bytes_up=bytes_up,
            bytes_down=bytes_down,
            payload_bytes=len(payload),
            seconds=done - started,
            breakdown=breakdown,
            split=k,
            quality=used_quality,
            server_role=reply_role,
            emulated_s=_total(emulated),
            emulated=emulated,
        )

    def _default_split(self, task: str, model: SplitModel) -> int:
        if self.codecs.get(task):
            return int(_codec_for(self.codecs, task, "device").meta.split)
        return 1

    def _client_only(
        self, model: SplitModel, image: np.ndarray, task: str, question: str | None, started: float
    ) -> InferenceResult:
        with torch.no_grad():
            answer = model.predict(image[None], [question])[0]
        wall = time.perf_counter() - started
        emulated = _emulated(self.compute, model.model_id, 0, model.n_stages, True, "device", wall)
        return InferenceResult(
            answer=answer,
            task=task,
            scheme="client-only",
            bytes_up=0,
            bytes_down=0,
            payload_bytes=0,
            seconds=time.perf_counter() - started,
            breakdown=Breakdown(device_s=wall),
            split=model.n_stages,
            emulated_s=emulated,
            emulated=Breakdown(device_s=emulated),
        )

    def _connect(self, address: tuple[str, int]) -> socket.socket:
        host, port = address
        try:
            sock = socket.create_connection((host, int(port)), timeout=self.connect_timeout_s)
        except (TimeoutError, ConnectionRefusedError, OSError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise EdgeUnreachableError(f"server {host}:{port} unreachable ({reason})") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def _total(b: Breakdown) -> float:
    return b.device_s + b.uplink_s + b.server_s + b.downlink_s + b.plan_s


def _left(deadline: float, address: tuple[str, int]) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise EdgeUnreachableError(f"server {address[0]}:{address[1]} did not answer in time")
    return left


__all__ = [
    "SCHEMES",
    "Breakdown",
    "DeviceClient",
    "EdgeServer",
    "EdgeUnreachableError",
    "InferenceResult",
    "ProtocolError",
    "RemoteError",
]
