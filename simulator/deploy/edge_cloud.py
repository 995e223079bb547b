"""The split, running: `serve_cloud` (the cloud process) and `run_edge` (the device), over TCP with asyncio.

One request per input sample (batch 1): the edge runs edge.onnx, packs the crossing tensors (`packing`) and
sends a REQUEST frame (`protocol`); the cloud checks the frame against its plan before it reads the body,
unpacks, runs cloud.onnx and answers with a RESULT carrying the model's outputs, the time it received the
request's last byte (the kernel's receive timestamp where Linux gives one) and its compute time. The edge
records, per request, edge compute (model and packing), bytes on the wire, transfer (from its send call to
the cloud's receipt of the last byte: both clocks are the same machine's CLOCK_REALTIME in the namespace
tests; across machines that needs synchronised clocks), cloud compute and end to end (edge start to answer).
Edge and cloud compute are this machine's CPU timings with onnxruntime, not the modelled accelerators.
"""
from __future__ import annotations

import asyncio
import errno
import json
import math
import os
import resource
import socket
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware_models.errors import UserError
from simulator.deploy import protocol
from simulator.deploy.export import file_sha256, session_of, wires_of
from simulator.deploy.packing import pack, unpack
from simulator.deploy.protocol import FrameError

# kernel receive timestamps (Linux): the time each packet arrived, so neither process's scheduling counts
SO_TIMESTAMPING = 37
SOF_TIMESTAMPING_RX_SOFTWARE, SOF_TIMESTAMPING_SOFTWARE = 1 << 3, 1 << 4
TIMESPEC = struct.Struct("qq")
ANCILLARY_BYTES = socket.CMSG_SPACE(3 * TIMESPEC.size)


MAX_CONNECTIONS = 512
ACCEPT_BACKOFF_S = 0.1


class PeerClosed(ConnectionError):
    """The other end closed the connection, `received` bytes into what was being read."""

    def __init__(self, message: str, received: int = 0) -> None:
        super().__init__(message)
        self.received = received


class SendTimeout(Exception):
    """The peer did not read what the server sent within the timeout."""


def _descriptor_limit() -> int:
    """The process's soft limit on open file descriptors."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- a loaded split ------------------------------------------------------------------------------------
@dataclass
class DeployedPlan:
    """plan.json and the ONNX file of one side, checked against each other."""

    folder: Path
    plan: dict
    digest: bytes
    wires: list = field(default_factory=list)

    @classmethod
    def load(cls, folder: str | Path, side: str) -> DeployedPlan:
        folder = Path(folder)
        plan_path, model_path = folder / "plan.json", folder / f"{side}.onnx"
        for path in (plan_path, model_path):
            if not path.is_file():
                raise UserError(f"--plan: {path}: no such file (give the folder `autosplit export --out` wrote)")
        try:
            plan = json.loads(plan_path.read_text())
            if plan.get("format") != "autosplit-split/1":
                raise ValueError(f"format {plan.get('format')!r}")
            wires = wires_of(plan)
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"--plan: {plan_path}: not a plan.json written by `autosplit export` ({exc})") from None
        expected = plan.get("files", {}).get(f"{side}.onnx")
        if expected != file_sha256(model_path):
            raise UserError(f"--plan: {model_path} does not match {plan_path} (its SHA-256 differs from the one "
                            "export recorded): export the split again")
        return cls(folder, plan, protocol.plan_digest(plan), wires)

    @property
    def payload_bytes(self) -> int:
        return int(self.plan["payload_bytes"])

    @property
    def result_bytes(self) -> int:
        return protocol.RESULT_TIMES.size + 4 * sum(math.prod(o["shape"]) for o in self.plan["outputs"])

    def session(self, side: str):
        try:
            return session_of((self.folder / f"{side}.onnx").read_bytes())
        except Exception as exc:
            raise UserError(f"--plan: {self.folder / (side + '.onnx')}: onnxruntime cannot load it: "
                            f"{' '.join(str(exc).split())[:200]}") from None


# --- socket helpers -----------------------------------------------------------------------------------
async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    future = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: None if future.done() else future.set_result(None))
    try:
        await future
    finally:
        loop.remove_reader(sock.fileno())


async def receive_exactly(sock: socket.socket, count: int) -> tuple[bytes, float]:
    """`count` bytes and the arrival time (UNIX seconds) of the last of them: the kernel's timestamp when the
    socket has SO_TIMESTAMPING on, else the time it was read. A PeerClosed when the peer closes first."""
    loop = asyncio.get_running_loop()
    buffer = bytearray(count)
    view = memoryview(buffer)
    got, arrival = 0, time.time()
    while got < count:
        try:
            received, messages, _, _ = sock.recvmsg_into([view[got:]], ANCILLARY_BYTES)
        except BlockingIOError:
            await _readable(loop, sock)
            continue
        if received == 0:
            raise PeerClosed(f"the peer closed the connection after {got} of {count} bytes", got)
        got += received
        arrival = time.time()
        for level, kind, data in messages:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(data) >= TIMESPEC.size:
                seconds, nanoseconds = TIMESPEC.unpack_from(data)
                if seconds:
                    arrival = seconds + nanoseconds * 1e-9
    return bytes(buffer), arrival


async def read_frame(sock: socket.socket, timeout_s: float, body_limit) -> tuple[protocol.Header, bytes, float]:
    """One frame: header, body, arrival of its last byte. `body_limit(header)` checks the header before any
    body byte is read (raising FrameError); `timeout_s` bounds the whole frame."""
    async def read() -> tuple[protocol.Header, bytes, float]:
        raw, arrival = await receive_exactly(sock, protocol.HEADER.size)
        header = protocol.decode_header(raw)
        body_limit(header)
        if not header.body_bytes:
            return header, b"", arrival
        try:
            body, arrival = await receive_exactly(sock, header.body_bytes)
        except PeerClosed as exc:  # the header came: this is a truncated frame even if no body byte did
            got = protocol.HEADER.size + exc.received
            raise PeerClosed(f"the peer closed the connection after {got} of the frame's "
                             f"{protocol.HEADER.size + header.body_bytes} bytes", got) from None
        return header, body, arrival

    return await asyncio.wait_for(read(), timeout_s)


READ_TIMEOUT_MESSAGE = "read timeout: no complete frame within"
LINGER_BYTES = 1 << 20
LINGER_S = 1.0


async def _discard(loop: asyncio.AbstractEventLoop, sock: socket.socket, limit: int) -> None:
    """Read and drop input until the peer closes or `limit` bytes have come."""
    while limit > 0:
        data = await loop.sock_recv(sock, min(limit, 65536))
        if not data:
            return
        limit -= len(data)


def _error_body(message: str) -> bytes:
    return message.encode()[: protocol.ERROR_MAX_BYTES]


# --- the cloud ---------------------------------------------------------------------------------------------
class CloudServer:
    """Serves one exported split: checks each connection's HELLO against the plan, then answers REQUESTs."""

    def __init__(self, plan: DeployedPlan, read_timeout_s: float = 30.0, log=None,
                 max_connections: int | None = None) -> None:
        self.plan = plan
        # connections served at once; the rest wait in the kernel's accept queue, so that idle or hostile
        # clients cannot exhaust the process's file descriptors (the default keeps 64 of them spare)
        self.max_connections = max_connections or max(1, min(MAX_CONNECTIONS, _descriptor_limit() - 64))
        self.session = plan.session("cloud")
        inputs = {i.name: tuple(i.shape) for i in self.session.get_inputs()}
        wanted = {w.name: w.shape for w in plan.wires}
        if set(inputs) != set(wanted):
            raise UserError(f"--plan: cloud.onnx reads {sorted(inputs)}, plan.json sends {sorted(wanted)}")
        self.output_names = [o["name"] for o in plan.plan["outputs"]]
        self.read_timeout_s = read_timeout_s
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.requests = 0
        self.rejected = 0

    def _check_hello(self, header: protocol.Header) -> None:
        if header.kind != protocol.HELLO:
            raise FrameError(f"expected HELLO first, got {protocol.KIND_NAMES[header.kind]}")
        if header.body_bytes > protocol.HELLO_MAX_BYTES:
            raise FrameError(f"HELLO of {header.body_bytes} bytes (at most {protocol.HELLO_MAX_BYTES})")

    def _check_request(self, header: protocol.Header) -> None:
        if header.kind != protocol.REQUEST:
            raise FrameError(f"expected REQUEST, got {protocol.KIND_NAMES[header.kind]}")
        if header.digest != self.plan.digest:
            raise FrameError("the request was packed for another plan (its plan digest differs)")
        if header.body_bytes != self.plan.payload_bytes:
            raise FrameError(f"REQUEST body of {header.body_bytes} bytes; the plan's tensors pack into "
                             f"{self.plan.payload_bytes}")

    def _run(self, payload: bytes) -> tuple[bytes, float]:
        start = time.perf_counter()
        outputs = self.session.run(self.output_names, unpack(payload, self.plan.wires))
        seconds = time.perf_counter() - start
        return b"".join(np.ascontiguousarray(o, dtype="<f4").tobytes() for o in outputs), seconds

    async def handle(self, sock: socket.socket, peer: str) -> None:
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
        except OSError:  # not Linux: arrival is the read time
            pass
        digest = self.plan.digest
        try:
            header, body, _ = await read_frame(sock, self.read_timeout_s, self._check_hello)
            try:
                theirs = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise FrameError("HELLO body is not JSON") from None
            except RecursionError:
                raise FrameError("HELLO body nests too deeply to be a plan description") from None
            mismatch = protocol.describe_mismatch(protocol.plan_description(self.plan.plan), theirs)
            if mismatch:
                raise FrameError(f"plan mismatch: {mismatch}")
            await self._send(sock, protocol.encode(protocol.READY, 0, digest))
            while True:
                header, body, arrival = await read_frame(sock, self.read_timeout_s, self._check_request)
                outputs, cloud_s = await loop.run_in_executor(self.executor, self._run, body)
                self.requests += 1
                await self._send(sock, protocol.encode(protocol.RESULT, header.request_id, digest,
                                                       protocol.RESULT_TIMES.pack(arrival, cloud_s) + outputs))
        except PeerClosed as exc:
            if exc.received:  # the client stopped in the middle of a frame: say so, it may still read
                await self._refuse(sock, peer, f"truncated frame: {exc}")
        except SendTimeout:
            self.log(f"serve-cloud: {peer}: did not read its answer within {self.read_timeout_s:g} s; "
                     "connection closed")
        except (FrameError, asyncio.TimeoutError) as exc:
            await self._refuse(sock, peer, str(exc) if isinstance(exc, FrameError) else
                               f"{READ_TIMEOUT_MESSAGE} {self.read_timeout_s:g} s")
        except ConnectionError as exc:
            self.log(f"serve-cloud: {peer}: connection lost ({exc})")
        except Exception as exc:  # the cloud model failed on this request: say so, keep serving others
            await self._refuse(sock, peer, f"the cloud model failed: {' '.join(str(exc).split())[:300]}")
        finally:
            sock.close()

    async def _send(self, sock: socket.socket, frame: bytes) -> None:
        """Send `frame`, giving up after the read timeout: a client that sends but never reads must not hold
        its connection (and a descriptor) forever."""
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(sock, frame), self.read_timeout_s)
        except asyncio.TimeoutError:
            raise SendTimeout from None

    async def _refuse(self, sock: socket.socket, peer: str, message: str) -> None:
        """Answer a broken frame with an ERROR frame (best effort) and log it; the caller closes."""
        loop = asyncio.get_running_loop()
        self.rejected += 1
        self.log(f"serve-cloud: {peer}: {message}; connection closed")
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, protocol.encode(protocol.ERROR, 0, self.plan.digest,
                                                                           _error_body(message))), 2.0)
            # closing with unread input would reset the connection and could destroy the ERROR frame before the
            # client reads it: stop sending, then discard what the client still sends, bounded in bytes and time
            sock.shutdown(socket.SHUT_WR)
            await asyncio.wait_for(_discard(loop, sock, LINGER_BYTES), LINGER_S)
        except (OSError, asyncio.TimeoutError):
            pass

    async def serve(self, host: str, port: int, ready=None) -> None:
        listener = bind_listener(host, port)
        loop = asyncio.get_running_loop()
        bound = listener.getsockname()
        if ready is not None:
            ready(bound)
        tasks = set()
        slots = asyncio.Semaphore(self.max_connections)
        try:
            while True:
                await slots.acquire()
                try:
                    connection, address = await loop.sock_accept(listener)
                except OSError as exc:
                    slots.release()
                    if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        raise
                    # out of descriptors (other clients of this process, a low ulimit): keep serving the
                    # connections held, and try again once some have closed
                    self.log(f"serve-cloud: cannot accept: {os.strerror(exc.errno)}; retrying in "
                             f"{ACCEPT_BACKOFF_S:g} s")
                    await asyncio.sleep(ACCEPT_BACKOFF_S)
                    continue
                task = asyncio.create_task(self.handle(connection, f"{address[0]}:{address[1]}"))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(lambda _task: slots.release())
        finally:
            listener.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket; a UserError for a port in use or an address this machine lacks."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"--host: cannot resolve {host!r} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"--port: {host}:{port} is already in use (another serve-cloud?); pick another port "
                            "or 0 for a free one") from None
        raise UserError(f"--host: cannot listen on {host}:{port} ({exc.strerror})") from None
    listener.listen(64)
    listener.setblocking(False)
    return listener


def serve_cloud(folder: str | Path, host: str, port: int, read_timeout_s: float, fmt: str = "table",
                max_connections: int | None = None) -> None:
    """Run the cloud process until interrupted; prints one line with the address once it listens (a JSON object
    with `fmt="json"`)."""
    plan = DeployedPlan.load(folder, "cloud")
    server = CloudServer(plan, read_timeout_s, max_connections=max_connections)

    def ready(address) -> None:
        if fmt == "json":
            print(json.dumps({"listening": True, "host": address[0], "port": address[1], "model": plan.plan["model"],
                              "tensors": len(plan.wires), "payload_bytes": plan.payload_bytes}), flush=True)
            return
        print(f"serve-cloud: {plan.plan['model']} cloud part ({len(plan.wires)} tensor(s), "
              f"{plan.payload_bytes} bytes a request) listening on {address[0]}:{address[1]}", flush=True)

    asyncio.run(server.serve(host, port, ready))


# --- the edge ---------------------------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict:
    """mean, p50, p95, p99 and max of a list of seconds."""
    a = np.asarray(values, dtype=float)
    if not a.size:
        return {"mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


TCP_INFO_RTT_OFFSET = 68  # struct tcp_info: 8 bytes of u8 fields, then u32s; tcpi_rtt (microseconds) is the 16th


def kernel_rtt_s(sock: socket.socket) -> float | None:
    """The kernel's smoothed round-trip time of a TCP connection in seconds (Linux's TCP_INFO), None elsewhere."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_INFO", 11), 104)
    except OSError:
        return None
    if sys.platform != "linux" or len(info) < TCP_INFO_RTT_OFFSET + 4:
        return None
    return struct.unpack_from("I", info, TCP_INFO_RTT_OFFSET)[0] * 1e-6


class EdgeClient:
    """The device: one connection (re-opened when it drops), one request in flight."""

    def __init__(self, plan: DeployedPlan, host: str, port: int, timeout_s: float, retries: int) -> None:
        self.plan, self.host, self.port = plan, host, port
        self.timeout_s, self.retries = timeout_s, retries
        self.session = plan.session("edge")
        self.input_name = self.session.get_inputs()[0].name
        self.wire_names = [w.name for w in plan.wires]
        outputs = {o.name for o in self.session.get_outputs()}
        if not set(self.wire_names) <= outputs:
            raise UserError(f"--plan: edge.onnx writes {sorted(outputs)}, plan.json sends {self.wire_names}")
        self.sock: socket.socket | None = None
        self.reconnects = 0
        self.hello_rtt_s = math.inf  # the quickest HELLO -> READY exchange (with both ends' processing)
        self.kernel_rtt_s: float | None = None  # the kernel's smoothed RTT of the last connection (Linux)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UserError(f"--connect: cannot resolve {self.host!r} ({exc.strerror})") from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), self.timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            sock.close()
            why = "timed out" if isinstance(exc, asyncio.TimeoutError) else (exc.strerror or str(exc))
            raise ConnectionError(f"cannot connect to {self.host}:{self.port}: {why}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hello = json.dumps(protocol.plan_description(self.plan.plan)).encode()
        start = time.perf_counter()
        await loop.sock_sendall(sock, protocol.encode(protocol.HELLO, 0, self.plan.digest, hello))
        header, body, _ = await read_frame(sock, self.timeout_s, self._check_answer(protocol.READY, 0))
        self.hello_rtt_s = min(self.hello_rtt_s, time.perf_counter() - start)
        if header.kind == protocol.ERROR:
            sock.close()
            raise UserError(f"serve-cloud at {self.host}:{self.port} refused the plan: {body.decode(errors='replace')}")
        self.sock = sock

    def _check_answer(self, kind: int, body_bytes: int):
        def check(header: protocol.Header) -> None:
            if header.kind == protocol.ERROR:
                if header.body_bytes > protocol.ERROR_MAX_BYTES:
                    raise FrameError(f"ERROR frame of {header.body_bytes} bytes")
                return
            if header.kind != kind:
                raise FrameError(f"expected {protocol.KIND_NAMES[kind]}, got {protocol.KIND_NAMES[header.kind]}")
            if header.digest != self.plan.digest:
                raise FrameError("the answer is for another plan (its plan digest differs)")
            if header.body_bytes != body_bytes:
                raise FrameError(f"{protocol.KIND_NAMES[kind]} of {header.body_bytes} bytes, expected {body_bytes}")
        return check

    def close(self) -> None:
        if self.sock is not None:
            self.kernel_rtt_s = kernel_rtt_s(self.sock)
            self.sock.close()
            self.sock = None

    def compute(self, sample: np.ndarray) -> bytes:
        wires = self.session.run(self.wire_names, {self.input_name: sample[None].astype(np.float32)})
        return pack(dict(zip(self.wire_names, wires)), self.plan.wires)

    async def exchange(self, request_id: int, payload: bytes) -> tuple[float, float, float, np.ndarray]:
        """(send time, cloud's arrival time, cloud compute s, outputs) of one request, reconnecting and sending
        again when the connection drops, up to `retries` times; a UserError after that."""
        loop = asyncio.get_running_loop()
        frame = protocol.encode(protocol.REQUEST, request_id, self.plan.digest, payload)
        last = None
        for attempt in range(self.retries + 1):
            try:
                if self.sock is None:
                    if attempt:
                        self.reconnects += 1
                    await self.connect()
                assert self.sock is not None  # connect() set it
                sent = time.time()
                await asyncio.wait_for(loop.sock_sendall(self.sock, frame), self.timeout_s)
                header, body, _ = await read_frame(self.sock, self.timeout_s,
                                                   self._check_answer(protocol.RESULT, self.plan.result_bytes))
            except (ConnectionError, asyncio.TimeoutError, OSError) as exc:
                last = f"no answer within {self.timeout_s:g} s" if isinstance(exc, asyncio.TimeoutError) \
                    else str(exc)
                self.close()
                continue
            except FrameError as exc:
                self.close()
                raise UserError(f"serve-cloud at {self.host}:{self.port} sent a malformed frame: {exc}") from None
            if header.kind == protocol.ERROR:
                self.close()
                message = body.decode(errors="replace")
                if message.startswith(READ_TIMEOUT_MESSAGE) and header.request_id == 0:
                    # the server closed a connection that idled longer than its read timeout: open another
                    last = f"serve-cloud closed the idle connection ({message})"
                    continue
                raise UserError(f"serve-cloud at {self.host}:{self.port} refused request {request_id}: {message}")
            if header.request_id != request_id:
                self.close()
                raise UserError(f"serve-cloud answered request {header.request_id} instead of {request_id}")
            arrival, cloud_s = protocol.RESULT_TIMES.unpack_from(body)
            outputs = np.frombuffer(body, dtype="<f4", offset=protocol.RESULT_TIMES.size).copy()
            return sent, arrival, cloud_s, outputs
        raise UserError(f"connection to {self.host}:{self.port} failed at request {request_id} after "
                        f"{self.retries + 1} attempt(s): {last}")


async def _run_edge(client: EdgeClient, x: np.ndarray, rate_per_s: float | None, progress: bool) -> list[dict]:
    from tqdm import tqdm

    try:
        await client.connect()
    except ConnectionError as exc:
        raise UserError(f"--connect: {exc} (is serve-cloud running there?)") from None
    except (FrameError, asyncio.TimeoutError) as exc:
        why = str(exc) if isinstance(exc, FrameError) else f"no answer within {client.timeout_s:g} s"
        raise UserError(f"--connect: {client.host}:{client.port} does not answer as serve-cloud does ({why})") from None
    rows = []
    start = time.perf_counter()
    bar = tqdm(total=len(x), unit="req", disable=not progress, file=sys.stderr, leave=False)
    try:
        for i, sample in enumerate(x):
            if rate_per_s:
                delay = start + i / rate_per_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            begin = time.perf_counter()
            payload = client.compute(sample)
            edge_s = time.perf_counter() - begin
            sent, arrival, cloud_s, outputs = await client.exchange(i, payload)
            end = time.perf_counter()
            rows.append({"request": i, "edge_s": edge_s, "payload_bytes": len(payload),
                         "frame_bytes": len(payload) + protocol.HEADER.size, "transfer_s": arrival - sent,
                         "cloud_s": cloud_s, "end_to_end_s": end - begin, "outputs": outputs})
            bar.update(1)
    finally:
        bar.close()
        client.close()
    return rows


def run_edge(folder: str | Path, host: str, port: int, x: np.ndarray, y: np.ndarray | None,
             rate_per_s: float | None = None, timeout_s: float = 30.0, retries: int = 2,
             progress: bool = False) -> dict:
    """Send every sample of `x` through the split; per-request timings, their percentiles and the accuracy."""
    plan = DeployedPlan.load(folder, "edge")
    shape = plan.plan["input"]["shape"]
    if shape and list(x.shape[1:]) != list(shape[1:]):
        raise UserError(f"--data: samples of shape {'x'.join(map(str, x.shape[1:]))}, but the edge model reads "
                        f"{'x'.join(map(str, shape[1:]))}")
    client = EdgeClient(plan, host, port, timeout_s, retries)
    rows = asyncio.run(_run_edge(client, x, rate_per_s, progress))
    outputs = np.stack([r.pop("outputs") for r in rows]) if rows else np.zeros((0, 1))
    first = math.prod(plan.plan["outputs"][0]["shape"])
    logits = outputs[:, :first]
    accuracy = None
    if y is not None and len(y):
        accuracy = float(np.mean(np.argmax(logits, axis=1) == y[: len(rows)]) * 100.0)
    return {
        "model": plan.plan["model"], "requests": len(rows), "payload_bytes": plan.payload_bytes,
        "frame_bytes": plan.payload_bytes + protocol.HEADER.size,
        "simulated_payload_bytes": plan.plan.get("simulated_payload_bytes"),
        "accuracy": accuracy, "reconnects": client.reconnects, "hello_rtt_s": client.hello_rtt_s,
        "kernel_rtt_s": client.kernel_rtt_s,
        "edge_s": percentiles([r["edge_s"] for r in rows]),
        "transfer_s": percentiles([r["transfer_s"] for r in rows]),
        "cloud_s": percentiles([r["cloud_s"] for r in rows]),
        "end_to_end_s": percentiles([r["end_to_end_s"] for r in rows]),
        "per_request": rows,
        "predicted_labels": np.argmax(logits, axis=1).tolist(),
    }
