"""The edge under the attacks of issue 10, measured against a real `qa-service serve`
(its own data directory and embedded Redis), written as JSON:

  python -m loadtests.edge_probe [--out loadtests/results/edge-probe.json]

- 24 logins at once: hub RSS at peak, and the latency of another request meanwhile;
- login time of an unknown user against a wrong password (a timing oracle if they differ);
- a 200 MiB chunked POST: how much is sent before the hub cuts it, hub RSS after;
- 600 sockets that never say hello: how many are still open after the hello deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        self.env |= {
            "QA_DATA_DIR": str(data_dir),
            "QA_PORT": str(port),
            "QA_LOGIN_ATTEMPTS_PER_ADDRESS": "1000",  # measure the work, not the limiter
            "QA_LOGIN_ATTEMPTS_PER_ACCOUNT": "1000",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "qa_service.cli", *args], env=self.env, check=True, capture_output=True)

    def start(self) -> None:
        cmd = [sys.executable, "-m", "qa_service.cli", "serve"]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the hub did not start")

    def rss_mib(self) -> int:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) // 1024

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(30)


def logins(hub: Hub) -> dict[str, Any]:
    def attempt(username: str, password: str, address: str) -> tuple[float, int]:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=hub.base, timeout=120, transport=transport) as client:
            client.get("/healthz")  # connected before the clock starts
            t0 = time.perf_counter()
            status = client.post("/api/login", json={"username": username, "password": password}).status_code
            return time.perf_counter() - t0, status

    unknown = [attempt(f"nobody{i}", "wrong-password", f"127.0.4.{i + 1}")[0] for i in range(12)]
    wrong = [attempt(f"user{i}", "wrong-password", f"127.0.5.{i + 1}")[0] for i in range(12)]
    peak, stop, codes, latencies = [hub.rss_mib()], threading.Event(), [], []

    def sample() -> None:
        while not stop.is_set():
            peak.append(hub.rss_mib())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [
        threading.Thread(target=lambda i=i: codes.append(attempt(f"user{i}", "right-password", f"127.0.3.{i + 1}")[1]))
        for i in range(24)
    ]
    for t in threads:
        t.start()
    with httpx.Client(base_url=hub.base, timeout=60) as other:
        while any(t.is_alive() for t in threads):
            t0 = time.perf_counter()
            other.get("/api/schedule")
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.02)
    stop.set()
    sampler.join()
    return {
        "logins_ok": codes.count(200),
        "rss_peak_during_24_logins_mib": max(peak),
        "other_request_ms_median": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "other_request_ms_max": round(1000 * max(latencies), 1) if latencies else None,
        "login_unknown_user_ms_median": round(1000 * statistics.median(unknown), 1),
        "login_wrong_password_ms_median": round(1000 * statistics.median(wrong), 1),
    }


def huge_body(hub: Hub) -> dict[str, Any]:
    chunk, sent, reply = b"a" * (1 << 20), 0, b""
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as s:
        s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        s.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(200):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass  # the hub closed the connection
        try:
            reply = s.recv(64)
        except OSError:
            pass
    return {
        "chunked_200mib_sent_before_cut_mib": round(sent / (1 << 20), 1),
        "chunked_reply": reply.split(b"\r\n", 1)[0].decode(errors="replace"),
        "rss_after_200mib_post_mib": hub.rss_mib(),
    }


def hello_less(hub: Hub, n: int = 600, wait: float = 12.0) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        url = f"ws://127.0.0.1:{hub.port}/ws/viewer"
        sockets = [stack.enter_context(connect(url, open_timeout=30)) for _ in range(n)]
        rss = hub.rss_mib()
        time.sleep(wait)
        alive = 0
        for ws in sockets:
            try:
                ws.ping().wait(1)
                alive += 1
            except Exception:  # closed by the hub: what we measure
                pass
    return {"hello_less_opened": n, "rss_with_them_mib": rss, f"hello_less_open_after_{wait:.0f}s": alive}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="loadtests/results/edge-probe.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-edge-") as tmp:
        hub = Hub(Path(tmp) / "data", _free_port())
        hub.cli("event", "load", str(Path(__file__).parent.parent / "qa_service/sample/marathon.yaml"), "--start-now")
        for i in range(24):
            hub.cli("users", "add", f"user{i}", "--role", "moderator", "--password", "right-password")
        hub.start()
        try:
            result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
            result["rss_idle_mib"] = hub.rss_mib()
            result |= logins(hub)
            result |= huge_body(hub)
            result |= hello_less(hub)
        finally:
            hub.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
