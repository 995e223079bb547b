"""Real TCP through a token-bucket shaper between two network namespaces (a helper for the network tests).

`ShapedPair` creates two namespaces joined by a veth pair and shapes the sender's side with `tc ... tbf`.
Run as a script, this module is the receiver (`serve`) or the sender (`send`) inside a namespace; the sender
prints one JSON line per measured upload. Traffic never leaves the namespaces it creates.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

PORT = 5201
HEADER = struct.Struct("!Q")  # every upload is preceded by its length
ARRIVAL = struct.Struct("!d")  # the receiver answers with the kernel's receive time of the upload's last byte
# receive timestamps taken by the kernel as each packet arrives (CLOCK_REALTIME, shared by all namespaces),
# so that neither process's scheduling delay counts
SO_TIMESTAMPING = 37
SOF_TIMESTAMPING_RX_SOFTWARE, SOF_TIMESTAMPING_SOFTWARE = 1 << 3, 1 << 4
TIMESPEC = struct.Struct("qq")
BUFFER_BYTES = 8 << 20  # socket buffers that hold a whole upload, so a descheduled process never idles the link
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # Linux: like SO_SNDBUF / SO_RCVBUF, beyond wmem_max (needs root)


def _large_buffers(sock: socket.socket) -> None:
    for force, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, BUFFER_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, BUFFER_BYTES)


def namespaces_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"'{tool}' not found (apt-get install iproute2)"
    probe = f"as5probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"'ip netns add' failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


class ShapedPair:
    """Namespaces `<prefix>s` (sender) and `<prefix>r` (receiver) joined by a veth pair; context manager."""

    def __init__(self, start_receiver: bool = True) -> None:
        """`start_receiver=False`: no receiver of this module's own; run yours with `exec_in`."""
        self.start_receiver = start_receiver
        tag = f"{os.getpid() % 100000}"
        self.sender, self.receiver = f"as5s{tag}", f"as5r{tag}"
        self.sender_dev, self.receiver_dev = f"as5vs{tag}", f"as5vr{tag}"
        self.sender_ip, self.receiver_ip = "10.231.0.1", "10.231.0.2"
        self._server: subprocess.Popen | None = None

    def __enter__(self) -> ShapedPair:
        try:
            _run("ip", "netns", "add", self.sender)
            _run("ip", "netns", "add", self.receiver)
            _run("ip", "link", "add", self.sender_dev, "netns", self.sender, "type", "veth",
                 "peer", "name", self.receiver_dev, "netns", self.receiver)
            for ns, dev, ip in ((self.sender, self.sender_dev, self.sender_ip),
                                (self.receiver, self.receiver_dev, self.receiver_ip)):
                _run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
                _run("ip", "-n", ns, "link", "set", dev, "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
            if not self.start_receiver:
                return self
            self._server = subprocess.Popen(
                ["ip", "netns", "exec", self.receiver, sys.executable, __file__, "serve", self.receiver_ip],
                stdout=subprocess.PIPE, text=True)
            if self._server.stdout.readline().strip() != "ready":
                raise RuntimeError("the receiver did not start")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait()
        for ns in (self.sender, self.receiver):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def command_in(self, namespace: str, *command: str) -> list[str]:
        """`command` run inside `namespace` (self.sender or self.receiver)."""
        return ["ip", "netns", "exec", namespace, *command]

    def shape(self, rate_mbit: float, burst_bytes: int) -> int:
        """Token bucket on the sender's egress at `rate_mbit` (tc's mbit = 10^6 bit/s) with a bucket of
        `burst_bytes`; returns the bucket size the kernel reports (it rounds), in bytes."""
        _run("ip", "netns", "exec", self.sender, "tc", "qdisc", "replace", "dev", self.sender_dev, "root", "tbf",
             "rate", f"{rate_mbit:g}mbit", "burst", str(burst_bytes), "limit", "4000000")
        shown = _run("ip", "netns", "exec", self.sender, "tc", "qdisc", "show", "dev", self.sender_dev)
        match = re.search(r"burst (\d+(?:\.\d+)?)([KM]?)b", shown)
        if not match:
            raise RuntimeError(f"cannot read the tbf burst from: {shown.strip()}")
        return int(float(match.group(1)) * {"": 1, "K": 1024, "M": 1024 * 1024}[match.group(2)])

    def send(self, payloads: list[int], repeats: list[int]) -> dict:
        """Upload each payload `repeats[i]` times on one connection; {"rtt_s", "uploads": [[bytes, s], ...]}."""
        command = ["ip", "netns", "exec", self.sender, sys.executable, __file__, "send", self.receiver_ip,
                   json.dumps([payloads, repeats])]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"sender failed: {done.stderr.strip()}")
        return json.loads(done.stdout)


# --- the two ends, run inside the namespaces ---------------------------------------------------------------
def serve(address: str) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    _large_buffers(listener)
    listener.bind((address, PORT))
    listener.listen(4)
    print("ready", flush=True)
    buffer = bytearray(1 << 20)
    ancillary = socket.CMSG_SPACE(3 * TIMESPEC.size)
    while True:
        connection, _ = listener.accept()
        connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING,
                              SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
        with connection:
            while True:
                header = connection.recv(HEADER.size, socket.MSG_WAITALL)
                if len(header) < HEADER.size:
                    break
                (remaining,) = HEADER.unpack(header)
                arrival = time.time()
                while remaining:
                    view = memoryview(buffer)[:min(len(buffer), remaining)]
                    got, messages, _, _ = connection.recvmsg_into([view], ancillary)
                    if not got:
                        return
                    remaining -= got
                    for level, kind, data in messages:
                        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                            seconds, nanoseconds = TIMESPEC.unpack_from(data)
                            arrival = seconds + nanoseconds * 1e-9
                connection.sendall(ARRIVAL.pack(arrival))


def send(address: str, plan: str) -> None:
    payloads, repeats = json.loads(plan)
    connection = socket.socket()
    _large_buffers(connection)
    connection.connect((address, PORT))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def upload(size: int) -> tuple[float, float]:
        """(seconds from the send to the kernel's receipt of the last byte, seconds until the answer)."""
        message = HEADER.pack(size) + bytes(size)
        start, clock = time.time(), time.perf_counter()
        connection.sendall(message)
        (arrival,) = ARRIVAL.unpack(connection.recv(ARRIVAL.size, socket.MSG_WAITALL))
        return arrival - start, time.perf_counter() - clock

    round_trip_s = min(upload(0)[1] for _ in range(21))  # the least disturbed of 21 empty exchanges
    uploads = []
    for size, count in zip(payloads, repeats):
        for _ in range(count):
            time.sleep(0.05)  # let the token bucket refill
            uploads.append([size + HEADER.size, upload(size)[0]])
    connection.close()
    print(json.dumps({"rtt_s": round_trip_s, "uploads": uploads}))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3])
    else:  # pragma: no cover
        raise SystemExit(f"usage: {Path(__file__).name} serve ADDRESS | send ADDRESS PLAN_JSON")
