"""Throughput of the WeChat Pay simulator: signed creates from 8 keep-alive clients.

Why: tests, the demo and the other benchmarks drive everything through the simulator,
so it must not be the bottleneck. Target: >= 300 signed creates/s on 2 cores with 8
concurrent keep-alive clients.

The simulator runs as its own process (``SimulatorProcess``, QPS limit off); the
clients run in another process (this script re-invoked with ``--worker``): 8 threads,
each with its own ``requests.Session``, every answer's signature verified. Two phases:

- ``inline``: each request is signed just before it is sent (what a real client does);
  the client process, GIL-bound on RSA signing plus ``requests``, then often costs more
  CPU per call than the simulator, so on 2 cores this is an end-to-end figure;
- ``presigned``: the same requests signed before the clock starts (nonces and
  timestamps still unique and fresh; the simulator still verifies every signature),
  which measures the simulator's own capacity.

Prints requests/s, p50/p99 latency, CPU ms per request on each side, and the ratio to
the target.

    .venv/bin/python bench/bench_simulator.py [--seconds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from django_wxpay_profitsharing.wechatpay import crypto
from wxpay_simulator.testing import SimulatorProcess

TARGET_RPS = 300.0
ORDERS = 4000
SUB_MCHID = "1900000109"
RECEIVER = "86693852"
PATH = "/v3/profitsharing/return-orders"


def seed(sim: SimulatorProcess) -> None:
    """Enough orders that no order reaches the 50-returns limit during the run."""
    orders = [
        {
            "sub_mchid": SUB_MCHID,
            "out_order_no": f"PB{n}",
            "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 10**9}],
        }
        for n in range(ORDERS)
    ]
    for start in range(0, ORDERS, 1000):
        sim.seed_orders(orders[start : start + 1000])


class Signer:
    """Builds signed create requests with the simulator's merchant credentials."""

    def __init__(self, creds: dict, phase: str) -> None:
        self.creds = creds
        self.phase = phase
        self.key = crypto.load_private_key(creds["private_key_path"])

    def request(self, index: int, n: int, clients: int) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            {
                "sub_mchid": SUB_MCHID,
                "out_order_no": f"PB{(n * clients + index) % ORDERS}",
                "out_return_no": f"R{self.phase}{index}x{n}",
                "return_mchid": RECEIVER,
                "amount": 1,
                "description": "bench",
            }
        ).encode()
        stamp, nonce = int(time.time()), crypto.make_nonce()
        signature = crypto.sign(self.key, crypto.request_message("POST", PATH, stamp, nonce, body))
        return body, {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "bench-simulator/1.0",
            "Wechatpay-Serial": self.creds["wechatpay_public_key_id"],
            "Authorization": crypto.authorization_header(
                mchid=self.creds["mchid"],
                serial_no=self.creds["merchant_serial_no"],
                nonce=nonce,
                timestamp=stamp,
                signature=signature,
            ),
        }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(
    base_url: str, creds_path: str, seconds: float, clients: int, phase: str, presign: int
) -> dict:
    """Run ``clients`` threads of signed creates for ``seconds``; latencies in ms."""
    creds = json.loads(Path(creds_path).read_text())
    signer = Signer(creds, phase)
    verify_key = crypto.load_public_key(creds["wechatpay_public_key_path"])
    ready = [[signer.request(i, n, clients) for n in range(presign)] for i in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    barrier = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def run(index: int) -> None:
        session = requests.Session()
        queue = ready[index]
        barrier.wait()
        n = 0
        while time.monotonic() < deadline[0]:
            body, headers = queue[n] if n < len(queue) else signer.request(index, n, clients)
            n += 1
            sent = time.perf_counter()
            response = session.post(base_url + PATH, data=body, headers=headers, timeout=10)
            latencies[index].append((time.perf_counter() - sent) * 1000)
            h = response.headers
            message = crypto.response_message(
                h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], response.content
            )
            if response.status_code != 200 or not crypto.verify(
                verify_key, message, h["Wechatpay-Signature"]
            ):
                errors[index] += 1
        session.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before = cpu_seconds()
    deadline.append(time.monotonic() + seconds)
    began = time.monotonic()
    barrier.wait()
    for thread in threads:
        thread.join()
    return {
        "elapsed": time.monotonic() - began,
        "cpu": cpu_seconds() - cpu_before,
        "latencies": [x for part in latencies for x in part],
        "errors": sum(errors),
    }


def process_cpu(pid: int) -> float | None:
    """CPU seconds used so far by ``pid`` (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run_phase(
    sim: SimulatorProcess, state: str, args: argparse.Namespace, phase: str, presign: int
):
    before = process_cpu(sim.pid or 0)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            f"--base-url={sim.base_url}",
            f"--credentials={Path(state) / 'credentials.json'}",
            f"--seconds={args.seconds}",
            f"--clients={args.clients}",
            f"--phase={phase}",
            f"--presign={presign}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = process_cpu(sim.pid or 0)
    result = json.loads(out.stdout)
    latencies = result["latencies"]
    count = len(latencies)
    rps = count / result["elapsed"]
    server = f"{(after - before) / count * 1000:.2f}" if before is not None else "n/a"
    print(f"[{phase}] {args.clients} keep-alive clients, {result['elapsed']:.1f} s")
    print(f"  requests:    {count}  (errors: {result['errors']})")
    print(
        f"  throughput:  {rps:.0f} req/s   ({rps / TARGET_RPS:.2f}x the {TARGET_RPS:.0f}/s target)"
    )
    print(
        f"  latency:     p50 {percentile(latencies, 50):.2f} ms"
        f"   p99 {percentile(latencies, 99):.2f} ms"
    )
    print(f"  cpu/request: simulator {server} ms   clients {result['cpu'] / count * 1000:.2f} ms")
    return rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--credentials", help=argparse.SUPPRESS)
    parser.add_argument("--phase", default="inline", help=argparse.SUPPRESS)
    parser.add_argument("--presign", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker(
            args.base_url, args.credentials, args.seconds, args.clients, args.phase, args.presign
        )
        print(json.dumps(result))
        return

    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as state, SimulatorProcess(state, qps_limit=0) as sim:
        seed(sim)
        inline = run_phase(sim, state, args, "inline", 0)
        # Enough pre-signed requests for twice the inline rate; beyond that, sign inline.
        per_client = int(inline * 2 * args.seconds / args.clients) + 10
        run_phase(sim, state, args, "presigned", per_client)


if __name__ == "__main__":
    main()
