"""Device/edge/cloud runtime over real sockets on 127.0.0.1: every scheme, bytes, timing, bad input.

Tiny randomly initialised photo models (models.build_model) and untrained feature codecs stand in
for the shipped weights: the runtime must give exactly the answer the in-process model gives on
what the edge receives, whatever the weights are.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from edgeai.errors import EdgeAIError, UserInputError
from edgeai.tools.split_inference import world
from edgeai.tools.split_inference.codec import CodecMeta, FeatureCodec
from edgeai.tools.split_inference.imagecodecs import (
    ImageDecodeError,
    decode_image,
    encode_lossy,
    encode_png,
    encode_to_budget,
    read_image,
)
from edgeai.tools.split_inference.models import build_model
from edgeai.tools.split_inference.protocol import (
    EdgeUnreachableError,
    ProtocolError,
    RemoteError,
    encode_frame,
    recv_frame,
)
from edgeai.tools.split_inference.runtime import (
    SCHEMES,
    DeviceClient,
    EdgeServer,
    InferenceResult,
    raw_activation_bytes,
    raw_activation_from_bytes,
)

TASKS = ("classify", "caption", "vqa")
FAST = 20_000_000.0  # bytes/s: functional tests should not wait on the link
K = 2  # the tiny codecs' split point


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return {
        t: build_model(t, dim=16, depth=2, heads=2, head_layers=1).eval()
        for t in TASKS  # 3 stages
    }


@pytest.fixture(scope="module")
def codecs(models: dict) -> dict[str, FeatureCodec]:
    torch.manual_seed(1)
    out = {}
    for task, model in models.items():
        codec = FeatureCodec(CodecMeta(model.model_id, task, K, 0.01, 4, 16, 16)).eval()
        codec.update()
        out[task] = codec
    return out


@pytest.fixture(scope="module")
def edge(models: dict, codecs: dict) -> Iterator[EdgeServer]:
    with EdgeServer("127.0.0.1", 0, models, codecs, role="edge") as server:
        yield server


@pytest.fixture(scope="module")
def cloud(models: dict) -> Iterator[EdgeServer]:
    with EdgeServer("127.0.0.1", 0, models, role="cloud") as server:
        yield server


@pytest.fixture(scope="module")
def device(models: dict, codecs: dict) -> DeviceClient:
    return DeviceClient(models, codecs, timeout_s=20)


@pytest.fixture(scope="module")
def examples() -> dict[str, world.Example]:
    return {t: world.example(t, 11) for t in TASKS}


def _expected(model, codec, scheme: str, ex: world.Example, quality: int = 75) -> str:
    """What the in-process model answers on exactly what the edge receives."""
    q = [ex.question]
    with torch.no_grad():
        if scheme in ("edge-lossless", "client-only", "cloud"):
            return model.predict(ex.image[None], q)[0]
        if scheme == "edge-lossy":
            return model.predict(decode_image(encode_lossy(ex.image, "jpeg", quality))[None], q)[0]
        h = model.features(ex.image[None], K)
        if scheme == "split-raw":
            return model.predict_from(h.half().float(), K, q)[0]
        return model.predict_from(codec.reconstruct(h), K, q)[0]


# ----------------------------------------------------------------------------- every scheme


@pytest.mark.parametrize("task", TASKS)
def test_every_scheme_answers_what_the_model_answers_on_what_was_sent(
    task: str, models: dict, codecs: dict, edge: EdgeServer, cloud: EdgeServer, device, examples
) -> None:
    ex = examples[task]
    for scheme in SCHEMES:
        server = cloud.address if scheme == "cloud" else edge.address
        result = device.infer(
            ex.image, task, scheme, FAST, ex.question, server, cloud_one_way_s=0.01
        )
        assert isinstance(result, InferenceResult)
        assert result.answer == _expected(models[task], codecs[task], scheme, ex), scheme
        assert result.answer.strip()
        if scheme in ("edge-lossless", "client-only", "cloud"):  # lossless: the model's own answer
            assert result.answer == models[task].predict(ex.image[None], [ex.question])[0]
    # The split schemes send far fewer bytes than the PNG.
    png = len(encode_png(ex.image))
    raw = device.infer(ex.image, task, "split-raw", FAST, ex.question, edge.address, split=K)
    assert raw.payload_bytes == 2 * 64 * 16 < png  # float16 of (1, 64 tokens, 16)


def test_payload_sizes_and_split_points(edge: EdgeServer, device, examples, models) -> None:
    ex = examples["classify"]
    lossless = device.infer(ex.image, "classify", "edge-lossless", FAST, None, edge.address)
    assert lossless.payload_bytes == len(encode_png(ex.image)) > 50_000
    assert lossless.split == 0 and lossless.server_role == "edge"
    co = device.infer(ex.image, "classify", "coinfer", FAST, None, edge.address)
    assert co.split == K and 0 < co.payload_bytes < lossless.payload_bytes
    local = device.infer(ex.image, "classify", "client-only", FAST)
    assert local.bytes_up == local.bytes_down == local.payload_bytes == 0
    assert local.split == models["classify"].n_stages
    lossy = device.infer(
        ex.image, "classify", "edge-lossy", FAST, None, edge.address, max_bytes=6000
    )
    assert lossy.payload_bytes <= 6000 and lossy.quality is not None
    assert lossy.answer == _expected(models["classify"], None, "edge-lossy", ex, lossy.quality)
    webp = device.infer(
        ex.image,
        "classify",
        "edge-lossy",
        FAST,
        None,
        edge.address,
        lossy_format="webp",
        quality=40,
    )
    assert webp.quality == 40 and webp.payload_bytes == len(encode_lossy(ex.image, "webp", 40))


def test_image_bytes_are_accepted_as_input(edge: EdgeServer, device, examples) -> None:
    ex = examples["caption"]
    a = device.infer(encode_png(ex.image), "caption", "edge-lossless", FAST, None, edge.address)
    b = device.infer(ex.image, "caption", "edge-lossless", FAST, None, edge.address)
    assert a.answer == b.answer


# ----------------------------------------------------------------------------- bytes on the wire


class CountingProxy:
    """A TCP relay that counts the bytes it forwards each way (what really crossed the socket)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = self.down = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[:2]
        self.threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(self.target, timeout=5)
        for src, dst, attr in ((client, upstream, "up"), (upstream, client, "down")):
            t = threading.Thread(target=self._pipe, args=(src, dst, attr), daemon=True)
            t.start()
            self.threads.append(t)

    def _pipe(self, src: socket.socket, dst: socket.socket, attr: str) -> None:
        while chunk := src.recv(1 << 16):
            setattr(self, attr, getattr(self, attr) + len(chunk))
            dst.sendall(chunk)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def wait(self) -> None:
        for t in self.threads:
            t.join(5)
        self.listener.close()


@pytest.mark.parametrize("scheme", ["coinfer", "edge-lossless", "cloud"])
def test_bytes_counted_are_the_bytes_on_the_wire(
    scheme: str, edge: EdgeServer, cloud: EdgeServer, device, examples
) -> None:
    ex = examples["vqa"]
    proxy = CountingProxy(cloud.address if scheme == "cloud" else edge.address)
    result = device.infer(
        ex.image, "vqa", scheme, FAST, ex.question, proxy.address, cloud_one_way_s=0.0
    )
    proxy.wait()
    assert (result.bytes_up, result.bytes_down) == (proxy.up, proxy.down)
    assert result.bytes_up > result.payload_bytes > 0
    assert result.bytes_down > len(result.answer)


# ----------------------------------------------------------------------------- timing


def test_emulated_latency_is_the_cost_model_of_the_bytes_sent(edge: EdgeServer, device, examples):
    """The emulated figure is delay + bytes / rate for each hop and the compute model per side,
    computed from the request's own bytes on the wire: exact, whatever the machine's load."""
    ex = examples["classify"]
    rate, one_way = 500_000.0, 0.02
    r = device.infer(
        ex.image, "classify", "edge-lossless", rate, None, edge.address, one_way_delay_s=one_way
    )
    e = r.emulated
    assert e.uplink_s == pytest.approx(one_way + r.bytes_up / rate)
    assert e.downlink_s == pytest.approx(one_way + r.bytes_down / (2 * rate))
    assert r.emulated_s == pytest.approx(e.device_s + e.uplink_s + e.server_s + e.downlink_s)
    # no cost model here: the measured compute stands in for the emulated one
    assert e.device_s == r.breakdown.device_s and e.server_s > 0
    co = device.infer(ex.image, "classify", "coinfer", rate, None, edge.address)
    assert co.bytes_up < r.bytes_up / 10
    assert co.emulated.uplink_s < e.uplink_s  # far fewer bytes on the same link


def test_measured_latency_is_at_least_the_link(edge: EdgeServer, device, examples) -> None:
    """The shaped socket cannot deliver faster than the link: lower bounds only (a loaded machine
    only adds time), no upper bound on wall-clock time."""
    ex = examples["classify"]
    rate, one_way = 500_000.0, 0.02
    r = device.infer(
        ex.image, "classify", "edge-lossless", rate, None, edge.address, one_way_delay_s=one_way
    )
    assert r.breakdown.uplink_s >= one_way + r.bytes_up / rate - 0.02
    assert r.seconds >= r.breakdown.uplink_s + r.breakdown.server_s


def test_cloud_pays_an_extra_long_round_trip(edge: EdgeServer, cloud: EdgeServer, device, examples):
    ex = examples["caption"]
    rate = 5_000_000.0
    e = device.infer(ex.image, "caption", "edge-lossless", rate, None, edge.address)
    c = device.infer(
        ex.image,
        "caption",
        "cloud",
        rate,
        None,
        edge.address,
        cloud=cloud.address,
        cloud_one_way_s=0.1,
    )
    assert c.emulated.plan_s >= 0.2  # request text up and plan back, 100 ms each way
    assert c.emulated.uplink_s >= 0.1 and c.emulated.downlink_s >= 0.1
    assert c.emulated_s > e.emulated_s + 0.3
    assert c.breakdown.plan_s >= 0.2 - 0.005  # the measured round trip is at least the delays
    assert c.server_role == "cloud" and c.answer == e.answer


def test_compute_is_emulated_beside_the_measured(models: dict, codecs: dict, examples) -> None:
    calls: list[tuple] = []

    def compute_seconds(model_id: str, start: int, stop: int, head: bool, role: str) -> float:
        calls.append((model_id, start, stop, head, role))
        return {"device": 1500.0, "edge": 1000.0}[role]

    ex = examples["classify"]
    with EdgeServer(models=models, codecs=codecs, compute=compute_seconds) as server:
        # a runtime that slept up to the emulated compute would time out here (30 s)
        client = DeviceClient(models, codecs, compute=compute_seconds, timeout_s=30.0)
        r = client.infer(ex.image, "classify", "split-raw", FAST, None, server.address, split=1)
        local = client.infer(ex.image, "classify", "client-only", FAST)
    mid = models["classify"].model_id
    assert calls == [
        (mid, 0, 1, False, "device"),
        (mid, 1, 3, True, "edge"),
        (mid, 0, 3, True, "device"),
    ]
    assert r.emulated.device_s == 1500.0 and r.emulated.server_s == 1000.0
    assert r.emulated_s == pytest.approx(2500.0 + r.emulated.uplink_s + r.emulated.downlink_s)
    assert local.emulated_s == 1500.0 and local.emulated.device_s == 1500.0


# ----------------------------------------------------------------------------- failures


def test_unreachable_edge_fails_fast() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EdgeUnreachableError, match=f"127.0.0.1:{port} unreachable"):
        DeviceClient({"classify": build_model("classify", dim=16, depth=1, heads=2)}).infer(
            np.zeros((32, 32, 3), np.uint8), "classify", "edge-lossless", FAST, None,
            ("127.0.0.1", port),
        )


def test_silent_edge_times_out_instead_of_hanging(models: dict, examples) -> None:
    with socket.create_server(("127.0.0.1", 0)) as hole:  # accepts (backlog), never answers
        client = DeviceClient(models, timeout_s=1.0)
        with pytest.raises(EdgeUnreachableError, match="answer within|did not answer in time"):
            client.infer(
                examples["classify"].image,
                "classify",
                "edge-lossless",
                FAST,
                None,
                hole.getsockname()[:2],
            )


def test_bad_input_gives_clear_errors(edge: EdgeServer, cloud: EdgeServer, device, examples):
    image, addr = examples["vqa"].image, edge.address
    cases = [
        (
            lambda: device.infer(b"not an image", "classify", "edge-lossless", FAST, None, addr),
            ImageDecodeError,
            "not a readable",
        ),
        (
            lambda: device.infer(image, "detect", "coinfer", FAST, None, addr),
            UserInputError,
            "unknown task 'detect'",
        ),
        (
            lambda: device.infer(image, "vqa", "coinfer", FAST, None, addr),
            UserInputError,
            "vqa needs a question",
        ),
        (
            lambda: device.infer(image, "vqa", "coinfer", FAST, "  ", addr),
            UserInputError,
            "vqa needs a question",
        ),
        (
            lambda: device.infer(image, "classify", "coinfer", 0, None, addr),
            UserInputError,
            "rate must be",
        ),
        (
            lambda: device.infer(image, "classify", "coinfer", -3.0, None, addr),
            UserInputError,
            "rate must be",
        ),
        (
            lambda: device.infer(image, "classify", "coinfer", float("nan"), None, addr),
            UserInputError,
            "rate must be",
        ),
        (
            lambda: device.infer(image, "classify", "teleport", FAST, None, addr),
            UserInputError,
            "unknown scheme 'teleport'",
        ),
        (
            lambda: device.infer(image, "classify", "split-raw", FAST, None, addr, split=9),
            UserInputError,
            "split point 9",
        ),
        (
            lambda: device.infer(image, "classify", "edge-lossy", FAST, None, addr, quality=0),
            UserInputError,
            "quality",
        ),
        (
            lambda: device.infer(image[..., 0], "classify", "coinfer", FAST, None, addr),
            UserInputError,
            "H x W x 3",
        ),
        (
            lambda: device.infer(image, "classify", "edge-lossless", FAST, None, None),
            UserInputError,
            "needs a server address",
        ),
        (
            lambda: device.infer(image, "classify", "cloud", FAST, None, addr),
            RemoteError,
            "role 'cloud'",
        ),
        (
            lambda: device.infer(image, "classify", "edge-lossless", FAST, None, cloud.address),
            RemoteError,
            "needs an edge server",
        ),
    ]
    for call, kind, match in cases:
        with pytest.raises(kind, match=match) as info:
            call()
        assert isinstance(info.value, EdgeAIError)
        assert "\n" not in str(info.value)


def test_edge_without_a_codec_refuses_coinfer_clearly(models: dict, codecs: dict, examples):
    with EdgeServer(models=models) as server:
        client = DeviceClient(models, codecs)
        with pytest.raises(RemoteError, match="no feature codec for task 'classify'"):
            client.infer(
                examples["classify"].image, "classify", "coinfer", FAST, None, server.address
            )
        # split-raw needs no codec and still works on the same server.
        ok = client.infer(
            examples["classify"].image, "classify", "split-raw", FAST, None, server.address, split=1
        )
        assert ok.answer


def test_codecs_at_several_split_points_follow_the_devices_split(models: dict, examples) -> None:
    torch.manual_seed(2)
    model = models["classify"]
    at = {}
    for k in (1, 2):
        codec = FeatureCodec(CodecMeta(model.model_id, "classify", k, 0.01, 4, 16, 16)).eval()
        codec.update()
        at[k] = codec
    ex = examples["classify"]
    with EdgeServer(models=models, codecs={"classify": [at[2], at[1]]}) as server:
        client = DeviceClient(models, {"classify": [at[2], at[1]]})
        for k in (1, 2, None):
            res = client.infer(ex.image, "classify", "coinfer", FAST, None, server.address, split=k)
            want = 2 if k is None else k  # no split asked: the first (default) codec's
            assert res.split == want
            with torch.no_grad():
                h = model.features(ex.image[None], want)
                assert res.answer == model.predict_from(at[want].reconstruct(h), want, [None])[0]
        with pytest.raises(UserInputError, match="no feature codec for 'classify' at split 3"):
            client.infer(ex.image, "classify", "coinfer", FAST, None, server.address, split=3)
        # a device whose codec sits where the edge has none gets the edge's reason back
        lone = DeviceClient(models, {"classify": [at[1]]})
        other = EdgeServer(models=models, codecs={"classify": at[2]})
        with other, pytest.raises(RemoteError, match="at split 1"):
            lone.infer(ex.image, "classify", "coinfer", FAST, None, other.address)


def test_server_survives_garbage_and_answers_the_next_device(edge: EdgeServer, device, examples):
    with socket.create_connection(edge.address, timeout=5) as s:  # junk instead of a frame
        s.sendall(b"\x00\x00\x00\x05hello")
        header, _, _ = recv_frame(s, timeout_s=5)
        assert header["type"] == "error" and header["kind"] == "ProtocolError"
    with socket.create_connection(edge.address, timeout=5) as s:  # a valid frame, bad payload
        s.sendall(
            encode_frame(
                {"version": 1, "type": "infer", "scheme": "edge-lossless", "task": "classify"},
                b"definitely not a png",
            )
        )
        header, _, _ = recv_frame(s, timeout_s=5)
        assert header["type"] == "error" and "received image" in header["message"]
        s.sendall(
            encode_frame(  # same connection, raw activation of the wrong size
                {
                    "version": 1,
                    "type": "infer",
                    "scheme": "split-raw",
                    "task": "classify",
                    "split": 1,
                    "shape": [1, 64, 16],
                },
                b"\x00" * 10,
            )
        )
        header, _, _ = recv_frame(s, timeout_s=5)
        assert header["type"] == "error" and "needs 2048 bytes" in header["message"]
    with socket.create_connection(edge.address, timeout=5) as s:  # device leaves mid-frame
        s.sendall(b"\x00\x00\x00\x40{")
    r = device.infer(
        examples["classify"].image, "classify", "edge-lossless", FAST, None, edge.address
    )
    assert r.answer


def test_raw_activation_round_trip_and_shape_check() -> None:
    h = torch.randn(1, 8, 4)
    back = raw_activation_from_bytes(raw_activation_bytes(h), [1, 8, 4])
    assert torch.equal(back, h.half().float())
    with pytest.raises(ProtocolError):
        raw_activation_from_bytes(raw_activation_bytes(h), [1, 8, 5])
    with pytest.raises(ProtocolError):
        raw_activation_from_bytes(b"", "nope")  # type: ignore[arg-type]


def test_server_refuses_bad_configuration(models: dict) -> None:
    with pytest.raises(UserInputError, match="role"):
        EdgeServer(models=models, role="fog")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="at least one model"):
        EdgeServer(models={})
    with EdgeServer(models=models) as server, pytest.raises(UserInputError, match="cannot listen"):
        EdgeServer(*server.address, models=models)


# ----------------------------------------------------------------------------- image codecs


def test_png_is_lossless_and_photo_sized(examples) -> None:
    image = examples["classify"].image
    data = encode_png(image)
    assert np.array_equal(decode_image(data), image)
    assert 60_000 < len(data) < 200_000


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_encode_to_budget_picks_the_best_quality_that_fits(fmt: str, examples) -> None:
    image = examples["vqa"].image
    for budget in (4_000, 12_000):
        enc = encode_to_budget(image, budget, fmt)
        assert enc.n_bytes <= budget and enc.fmt == fmt
        assert enc.data == encode_lossy(image, fmt, enc.quality)
        if enc.quality < 100:
            assert len(encode_lossy(image, fmt, enc.quality + 1)) > budget
        assert decode_image(enc.data).shape == image.shape
    tiny = encode_to_budget(image, 10, fmt)  # nothing fits: the smallest file comes back
    assert tiny.quality == 1 and tiny.n_bytes > 10


def test_image_codec_errors(tmp_path) -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageDecodeError, match="x.png: not a readable"):
        decode_image(b"\x89PNG\r\n\x1a\n broken", source="x.png")
    with pytest.raises(UserInputError, match="unknown lossy format"):
        encode_lossy(np.zeros((8, 8, 3), np.uint8), "gif", 50)
    with pytest.raises(UserInputError, match="uint8"):
        encode_png(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(UserInputError, match="byte budget"):
        encode_to_budget(np.zeros((8, 8, 3), np.uint8), 0)
    with pytest.raises(UserInputError, match="does not exist"):
        read_image(str(tmp_path / "missing.png"))
    with pytest.raises(UserInputError, match="directory"):
        read_image(str(tmp_path))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageDecodeError, match="notes.txt"):
        read_image(str(text))
    gray = tmp_path / "gray.png"
    from PIL import Image

    Image.fromarray(np.full((10, 12), 7, np.uint8), mode="L").save(gray)
    assert read_image(str(gray)).shape == (10, 12, 3)


def test_addresses_codec_mismatch_and_timeout_budget(
    models: dict, codecs: dict, edge: EdgeServer, device, examples
) -> None:
    ex = examples["classify"]
    host, port = edge.address
    by_text = device.infer(ex.image, "classify", "split-raw", FAST, None, f"{host}:{port}", split=1)
    assert by_text.answer
    for bad in ("nowhere", "host:0", "host:99999", ":80"):
        with pytest.raises(UserInputError, match="expected HOST:PORT"):
            device.infer(ex.image, "classify", "edge-lossless", FAST, None, bad)
    wrong = DeviceClient(models, {"classify": codecs["caption"]})
    with pytest.raises(UserInputError, match="trained for blip-image-captioner/caption"):
        wrong.infer(ex.image, "classify", "coinfer", FAST, None, edge.address)
    hurried = DeviceClient(models, timeout_s=1.0)  # refused up front: the upload alone is longer
    with pytest.raises(UserInputError, match="over the 1 s timeout"):
        hurried.infer(ex.image, "classify", "edge-lossless", 50_000.0, None, edge.address)


def test_server_answers_malformed_fields_with_an_error_frame(edge: EdgeServer) -> None:
    base = {"version": 1, "type": "infer", "task": "classify"}
    cases = [
        ({**base, "scheme": "split-raw", "split": [1], "shape": [1, 64, 16]}, "TypeError"),
        ({**base, "scheme": "split-raw", "split": "one"}, "ValueError"),
        ({**base, "scheme": "coinfer", "split": 2}, "CodecError"),
        ({**base, "scheme": "nope"}, "UnknownSchemeError"),
        ({**base, "version": 7, "scheme": "coinfer"}, "ProtocolError"),
        ({**base, "type": "dance", "scheme": "coinfer"}, "ProtocolError"),
    ]
    with socket.create_connection(edge.address, timeout=5) as s:
        for header, kind in cases:
            s.sendall(encode_frame(header, b"\x00" * 2048))
            reply, _, _ = recv_frame(s, timeout_s=5)
            assert reply["type"] == "error" and reply["kind"] == kind, reply
            assert reply["message"] and "\n" not in reply["message"]


def test_server_refuses_a_bad_downlink_request(edge: EdgeServer) -> None:
    base = {"version": 1, "type": "infer", "task": "classify", "scheme": "edge-lossless"}
    with socket.create_connection(edge.address, timeout=5) as s:
        for extra, kind in (
            ({"downlink_rate_bps": "fast"}, "ProtocolError"),
            ({"downlink_rate_bps": -5.0}, "UserInputError"),
            ({"downlink_rate_bps": 1e6, "one_way_delay_s": -1}, "UserInputError"),
        ):
            s.sendall(encode_frame({**base, **extra}, encode_png(np.zeros((8, 8, 3), np.uint8))))
            reply, _, _ = recv_frame(s, timeout_s=5)
            assert reply["type"] == "error" and reply["kind"] == kind, reply


def test_broken_weights_are_one_line_errors(tmp_path) -> None:
    from edgeai.errors import WeightsError
    from edgeai.tools.split_inference.codec import save_codec
    from edgeai.tools.split_inference.runtime import load_task_codec, load_task_model

    (tmp_path / "classify.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError) as info:
        load_task_model("classify", tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(WeightsError, match="caption checkpoint .*caption.pt' not found"):
        load_task_model("caption", tmp_path)
    with pytest.raises(WeightsError) as info:
        load_task_codec(path=tmp_path / "classify.pt")
    assert "\n" not in str(info.value)
    # A codec whose weights do not fit its own metadata: torch's multi-line message, one line here.
    codec = FeatureCodec(CodecMeta("vit-image-classifier", "classify", 1, 0.01, 4, 16, 16))
    codec.update()
    save_codec(codec, tmp_path / "codec.pt")
    blob = torch.load(tmp_path / "codec.pt", weights_only=True)
    blob["meta"]["channels"] = 6
    torch.save(blob, tmp_path / "codec.pt")
    with pytest.raises(WeightsError) as info:
        load_task_codec(path=tmp_path / "codec.pt")
    assert "\n" not in str(info.value)
