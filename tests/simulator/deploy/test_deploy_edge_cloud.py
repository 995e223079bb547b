"""`serve-cloud` and `run-edge` over loopback TCP: answers, accuracy, and every way a peer can misbehave."""
import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import FIXTURES

from hardware_models.errors import UserError
from simulator.accuracy.measure import AccuracyMeter
from simulator.accuracy.npz import load_npz
from simulator.cli import main
from simulator.deploy import protocol
from simulator.deploy.edge_cloud import CloudServer, DeployedPlan, run_edge
from simulator.deploy.export import export_split

DIGITS = FIXTURES / "digits_cnn.onnx"
DIGITS_DATA = FIXTURES / "digits.npz"
DIGITS_CALIBRATION = FIXTURES / "digits_calibration.npz"
PLAN = {"method": "hand", "edge_layers": ["conv1", "conv2"], "weight_bits": [4, 3], "activation_bits": [5, 3]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("split")
    calibration = load_npz(DIGITS_CALIBRATION)[0]
    export_split(DIGITS, PLAN, folder / "a", calibration, "digits_calibration.npz")
    other = dict(PLAN, activation_bits=[5, 4])
    export_split(DIGITS, other, folder / "b", calibration, "digits_calibration.npz")
    return folder


class ServerThread:
    """A CloudServer on 127.0.0.1, any free port, in a thread with its own event loop."""

    def __init__(self, server: CloudServer) -> None:
        self.server, self.log = server, []
        server.log = self.log.append
        bound = threading.Event()
        self.loop = asyncio.new_event_loop()

        def ready(address):
            self.port = address[1]
            bound.set()

        self.task = None

        def run():
            asyncio.set_event_loop(self.loop)
            self.task = self.loop.create_task(server.serve("127.0.0.1", 0, ready))
            try:
                self.loop.run_until_complete(self.task)
            except asyncio.CancelledError:
                pass

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert bound.wait(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(5)


@pytest.fixture
def server(exported):
    running = ServerThread(CloudServer(DeployedPlan.load(exported / "a", "cloud"), read_timeout_s=0.5))
    yield running
    running.stop()


def test_the_split_over_tcp_has_the_measured_accuracy_of_its_plan(exported, server):
    x, y = load_npz(DIGITS_DATA)
    result = run_edge(exported / "a", "127.0.0.1", server.port, x, y)
    meter = AccuracyMeter(DIGITS, x, y, load_npz(DIGITS_CALIBRATION)[0])
    assert result["accuracy"] == meter.accuracy({"conv1": 4, "conv2": 3}, {"conv1": 5, "conv2": 3})
    assert result["requests"] == len(y) == server.server.requests
    assert result["payload_bytes"] == 192 and result["frame_bytes"] == 192 + protocol.HEADER.size
    assert all(r["payload_bytes"] == 192 for r in result["per_request"])
    for key in ("edge_s", "transfer_s", "cloud_s", "end_to_end_s"):
        assert 0 < result[key]["p50"] <= result[key]["p99"] <= result[key]["max"]
    assert result["end_to_end_s"]["p50"] > result["cloud_s"]["p50"]


def test_run_edge_command_prints_json_with_percentiles_and_accuracy(exported, server, capsys):
    assert main(["run-edge", "--plan", str(exported / "a"), "--connect", f"127.0.0.1:{server.port}", "--data",
                 str(DIGITS_DATA), "--limit", "20", "--rate", "500", "--uplink", "10Mbps", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] == 20 and 0 <= out["accuracy"] <= 100
    assert out["predicted_transfer_s"] > out["frame_bytes"] * 8 / 10e6
    assert set(out["end_to_end_s"]) == {"mean", "p50", "p95", "p99", "max"}


def test_a_plan_that_does_not_match_the_servers_is_refused_with_the_difference(exported, server):
    x, y = load_npz(DIGITS_DATA)
    with pytest.raises(UserError, match=r"refused the plan: plan mismatch: tensor conv2::q\d.*|refused the plan"):
        run_edge(exported / "b", "127.0.0.1", server.port, x[:2], y[:2])


def test_an_edited_model_file_does_not_match_its_plan(exported, tmp_path):
    import shutil

    copy = tmp_path / "split"
    shutil.copytree(exported / "a", copy)
    shutil.copy(exported / "b" / "edge.onnx", copy / "edge.onnx")
    with pytest.raises(UserError, match="does not match"):
        DeployedPlan.load(copy, "edge")


def test_a_dead_peer_is_one_clean_error(exported, capsys):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    assert main(["run-edge", "--plan", str(exported / "a"), "--connect", f"127.0.0.1:{port}", "--data",
                 str(DIGITS_DATA)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot connect" in err and "serve-cloud" in err


def test_a_peer_that_never_answers_times_out_instead_of_hanging(exported, capsys):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        start = time.perf_counter()
        assert main(["run-edge", "--plan", str(exported / "a"), "--connect", f"127.0.0.1:{silent.getsockname()[1]}",
                     "--data", str(DIGITS_DATA), "--timeout", "0.3s"]) == 2
        assert time.perf_counter() - start < 10
        assert "no answer within 0.3 s" in capsys.readouterr().err
    finally:
        silent.close()


def test_a_port_in_use_is_one_clean_error(exported):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        done = subprocess.run([sys.executable, "-m", "simulator.cli", "serve-cloud", "--plan", str(exported / "a"),
                               "--port", str(taken.getsockname()[1])], capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "already in use" in done.stderr


class DroppingServer(CloudServer):
    """Drops the connection (as a crash or a NAT timeout would) at the given request numbers."""

    drop_at: set = set()

    def _run(self, payload):
        self.requests_seen = getattr(self, "requests_seen", 0) + 1
        if self.requests_seen in self.drop_at:
            raise ConnectionResetError("dropped by the test")
        return super()._run(payload)


def test_a_dropped_connection_is_reopened_and_the_request_sent_again(exported):
    x, y = load_npz(DIGITS_DATA)
    server = DroppingServer(DeployedPlan.load(exported / "a", "cloud"))
    server.drop_at = {3, 7}
    running = ServerThread(server)
    try:
        result = run_edge(exported / "a", "127.0.0.1", running.port, x[:10], y[:10])
        reference = run_edge(exported / "a", "127.0.0.1", running.port, x[:10], y[:10])
    finally:
        running.stop()
    assert result["reconnects"] == 2 and result["requests"] == 10
    assert result["predicted_labels"] == reference["predicted_labels"]


@pytest.mark.slow
def test_a_client_slower_than_the_servers_read_timeout_reconnects(exported, server):
    x, y = load_npz(DIGITS_DATA)
    result = run_edge(exported / "a", "127.0.0.1", server.port, x[:3], y[:3], rate_per_s=1.0)  # read timeout 0.5 s
    assert result["requests"] == 3 and result["reconnects"] == 2


def test_serve_cloud_prints_where_it_listens_as_json(exported):
    server = subprocess.Popen([sys.executable, "-m", "simulator.cli", "serve-cloud", "--plan", str(exported / "a"),
                               "--port", "0", "--format", "json"], stdout=subprocess.PIPE, text=True)
    try:
        line = json.loads(server.stdout.readline())
        x, y = load_npz(DIGITS_DATA)
        assert line["host"] == "127.0.0.1" and line["payload_bytes"] == 192
        assert run_edge(exported / "a", "127.0.0.1", line["port"], x[:2], y[:2])["requests"] == 2
    finally:
        server.kill()
        server.wait()


def test_a_connection_dropped_more_often_than_the_retries_allow_is_reported(exported):
    x, y = load_npz(DIGITS_DATA)
    server = DroppingServer(DeployedPlan.load(exported / "a", "cloud"))
    server.drop_at = {2, 3}
    running = ServerThread(server)
    try:
        with pytest.raises(UserError, match="failed at request 1 after 2 attempt"):
            run_edge(exported / "a", "127.0.0.1", running.port, x[:5], y[:5], retries=1)
    finally:
        running.stop()


# --- the server as a network service: malformed frames ---------------------------------------------------
def exchange(port: int, data: bytes, half_close: bool = True) -> bytes:
    """Send raw bytes, optionally close our sending side, and read everything the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def error_of(answer: bytes) -> str:
    header = protocol.decode_header(answer[: protocol.HEADER.size])
    assert header.kind == protocol.ERROR, protocol.KIND_NAMES[header.kind]
    assert len(answer) == protocol.HEADER.size + header.body_bytes
    return answer[protocol.HEADER.size:].decode()


def hello_for(plan_folder: Path) -> bytes:
    plan = DeployedPlan.load(plan_folder, "cloud")
    body = json.dumps(protocol.plan_description(plan.plan)).encode()
    return protocol.encode(protocol.HELLO, 0, plan.digest, body)


def ready_and_then(port: int, hello: bytes, frame: bytes) -> str:
    answer = exchange(port, hello + frame)
    header = protocol.decode_header(answer[: protocol.HEADER.size])
    assert header.kind == protocol.READY
    return error_of(answer[protocol.HEADER.size:])


def still_serves(exported, port: int) -> None:
    x, y = load_npz(DIGITS_DATA)
    assert run_edge(exported / "a", "127.0.0.1", port, x[:3], y[:3])["requests"] == 3


def test_malformed_frames_get_an_error_and_the_server_keeps_serving(exported, server):
    plan = DeployedPlan.load(exported / "a", "cloud")
    hello = hello_for(exported / "a")
    request = lambda body, digest=plan.digest, kind=protocol.REQUEST: protocol.encode(kind, 1, digest, body)
    cases = {
        "not autosplit": (exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 40), "not an autosplit frame"),
        "truncated header": (exchange(server.port, hello[:10]), "truncated frame"),
        "huge hello": (exchange(server.port, protocol.HEADER.pack(protocol.MAGIC, 1, protocol.HELLO, 0, 0, b"\0" * 8,
                                                                  2**62)), "at most"),
        "hello not json": (exchange(server.port, protocol.encode(protocol.HELLO, 0, plan.digest, b"\x80\x81")), "not JSON"),
        "request first": (exchange(server.port, request(b"\0" * 192)), "expected HELLO"),
        "version": (exchange(server.port, hello[:4] + b"\x07" + hello[5:]), "protocol version 7"),
    }
    for name, (answer, expected) in cases.items():
        assert expected in error_of(answer), name
    after_hello = {
        "short body": (request(b"\0" * 191), "pack into 192"),
        "long body": (request(b"\0" * 10**6), "pack into 192"),
        "other plan": (request(b"\0" * 192, digest=b"12345678"), "another plan"),
        "wrong kind": (request(b"", kind=protocol.READY), "expected REQUEST"),
        "truncated body": (request(b"\0" * 192)[:-50], "truncated frame"),
        "header only": (request(b"\0" * 192)[: protocol.HEADER.size], "truncated frame"),
    }
    for name, (frame, expected) in after_hello.items():
        assert expected in ready_and_then(server.port, hello, frame), name
    # a client that says nothing is cut off after the read timeout
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert "read timeout" in error_of(sock.recv(4096) + sock.recv(4096))
    assert server.server.rejected == len(cases) + len(after_hello) + 1
    still_serves(exported, server.port)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=1, max_size=200), keep=st.integers(0, 100))
def test_random_bytes_after_a_valid_prefix_never_crash_the_server(exported, server, garbage, keep):
    hello = hello_for(exported / "a")
    prefix = (hello + protocol.encode(protocol.REQUEST, 0, DeployedPlan.load(exported / "a", "cloud").digest,
                                      b"\0" * 192))[:keep]
    answer = exchange(server.port, prefix + garbage)
    # whatever was sent, the answer is a sequence of well-formed frames, the last of them an ERROR
    kinds = []
    while answer:
        header = protocol.decode_header(answer[: protocol.HEADER.size])
        kinds.append(header.kind)
        answer = answer[protocol.HEADER.size + header.body_bytes:]
    assert kinds and kinds[-1] == protocol.ERROR
    assert server.thread.is_alive()


def test_the_server_still_serves_after_the_fuzzing(exported, server):
    exchange(server.port, b"\xff" * 100)
    still_serves(exported, server.port)


def test_a_hello_nested_too_deeply_is_blamed_on_the_frame(exported, server):
    plan = DeployedPlan.load(exported / "a", "cloud")
    deep = protocol.encode(protocol.HELLO, 0, plan.digest, b"[" * protocol.HELLO_MAX_BYTES)
    message = error_of(exchange(server.port, deep))
    assert "nests too deeply" in message and "cloud model failed" not in message
    still_serves(exported, server.port)


SERVE_WITH_FEW_DESCRIPTORS = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))
from simulator.cli import main
sys.exit(main(["serve-cloud", "--plan", sys.argv[1], "--port", "0", "--read-timeout", "20s", "--format", "json"]))
"""


@pytest.mark.slow
def test_more_idle_connections_than_descriptors_do_not_stop_the_server(exported):
    """Issue 25: at a descriptor limit of 96, 300 idle connections used to end serve-cloud with EMFILE. The
    server now serves at most limit - 64 connections at once (the rest wait in the accept queue) and keeps
    serving: once the idle clients leave, a real client is answered."""
    server = subprocess.Popen([sys.executable, "-c", SERVE_WITH_FEW_DESCRIPTORS, str(exported / "a")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    idle = []
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if '"port"' in line:
                port = json.loads(line)["port"]
        assert port, server.stderr.read()
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            idle.append(sock)
        time.sleep(1.0)
        assert server.poll() is None, server.stderr.read()
        for sock in idle:
            sock.close()
        idle.clear()
        x, y = load_npz(DIGITS_DATA)
        assert run_edge(exported / "a", "127.0.0.1", port, x[:3], y[:3], timeout_s=60.0)["requests"] == 3
        assert server.poll() is None
    finally:
        for sock in idle:
            sock.close()
        server.kill()
        server.wait()


class SmallSendBufferServer(CloudServer):
    """A server whose sockets buffer little, so that a client that never reads blocks its sends quickly."""

    async def handle(self, sock, peer):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await super().handle(sock, peer)


@pytest.mark.slow
def test_a_client_that_sends_but_never_reads_is_cut_off(exported):
    """A client that never reads its answers fills the server's send buffer; the send times out (the read
    timeout) and the connection is closed instead of holding a descriptor forever."""
    running = ServerThread(SmallSendBufferServer(DeployedPlan.load(exported / "a", "cloud"), read_timeout_s=1.0))
    plan = DeployedPlan.load(exported / "a", "cloud")
    requests = protocol.encode(protocol.REQUEST, 1, plan.digest, b"\0" * 192) * 256

    def flood(sock: socket.socket) -> None:
        try:
            while True:
                sock.sendall(requests)
        except OSError:  # the server closed the connection
            pass

    try:
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(hello_for(exported / "a"))
            sender = threading.Thread(target=flood, args=(sock,), daemon=True)
            sender.start()
            deadline = time.monotonic() + 120
            while not any("did not read its answer" in line for line in running.log):
                assert time.monotonic() < deadline and sender.is_alive() or any(
                    "did not read" in line for line in running.log), running.log[-3:]
                time.sleep(0.1)
        still_serves(exported, running.port)
    finally:
        running.stop()


def test_run_edge_prints_the_measured_edge_compute_beside_the_plans_prediction(tmp_path, capsys):
    calibration = load_npz(DIGITS_CALIBRATION)[0]
    export_split(DIGITS, {**PLAN, "breakdown": {"edge_s": 2.5e-3}}, tmp_path / "p", calibration, "c.npz")
    running = ServerThread(CloudServer(DeployedPlan.load(tmp_path / "p", "cloud"), read_timeout_s=0.5))
    try:
        assert main(["run-edge", "--plan", str(tmp_path / "p"), "--connect", f"127.0.0.1:{running.port}", "--data",
                     str(DIGITS_DATA), "--limit", "5"]) == 0
        table = capsys.readouterr().out
        assert main(["run-edge", "--plan", str(tmp_path / "p"), "--connect", f"127.0.0.1:{running.port}", "--data",
                     str(DIGITS_DATA), "--limit", "5", "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
    finally:
        running.stop()
    assert data["predicted_edge_s"] == 2.5e-3
    line = next(l for l in table.splitlines() if l.startswith("edge compute:"))
    assert "the plan predicted 2.500 ms" in line and "% measured vs predicted" in line


@pytest.mark.slow
def test_a_vit_split_over_tcp_sends_the_token_tensor_and_has_its_measured_accuracy(tmp_path):
    """tests/fixtures/tiny_vit.onnx cut after the attention residual: the 5x32 token tensor crosses at 5 bits."""
    model, data = FIXTURES / "tiny_vit.onnx", FIXTURES / "tiny_vit.npz"
    x, y = load_npz(data)
    meter = AccuracyMeter(model, x, y)
    edge = meter.layers[: meter.layers.index("block.add") + 1]
    plan = {"method": "hand", "edge_layers": edge, "weight_bits": [6 if n in meter.weight_layers else None
                                                                   for n in edge],
            "activation_bits": [4] * len(edge)}
    written = export_split(model, plan, tmp_path / "vit", x[:128], "tiny_vit.npz (first 128)")
    assert written["self_check"]["max_abs_difference"] == 0.0
    assert [c["shape"] for c in written["crossing"]] == [[1, 5, 32]]
    running = ServerThread(CloudServer(DeployedPlan.load(tmp_path / "vit", "cloud"), read_timeout_s=2.0))
    try:
        result = run_edge(tmp_path / "vit", "127.0.0.1", running.port, x, y)
    finally:
        running.stop()
    weights = {n: 6 for n in edge if n in meter.weight_layers}
    assert result["accuracy"] == meter.accuracy(weights, {n: 4 for n in edge})
    assert result["payload_bytes"] == 5 * 32 * 4 // 8
