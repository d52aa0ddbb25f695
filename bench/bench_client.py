"""Benchmark 1, client overhead: this client vs ``wechatpayv3`` over HTTPS.

Why: every return costs at least one signed request and one verified answer; the
client should add little beyond the two RSA operations that WeChat Pay requires, and
reuse its TLS connection (one keep-alive session) instead of a handshake per call.

Both clients make 1,000 create+query pairs, one after the other, against the same
simulator over HTTPS (``--tls``, mode ``both``: our client verifies with the WeChat Pay
public key, ``wechatpayv3`` with the platform certificate from its ``cert_dir``; both
RSA-2048). Each client runs in its own process; its CPU time is
``time.process_time()`` in that process (the simulator is another process). In the
same run, the cost of one RSA-2048 sign plus one verify is measured as the yardstick,
in the same process, after each of ten blocks of calls; the CPU ratio is the median
of the ten blocks' ratios (one block on 2 shared cores can be off by 10-40%).

Targets: our wall time at most 0.6x of ``wechatpayv3``'s; our client-side CPU per call
within 1.5x of one sign plus one verify.

A third process runs the same pairs through ``bare_client.py``, a loop that does only
what the protocol requires (sign, one TLS write, read, verify, parse). Its ratio is the
floor on this machine: where RSA is fast (OpenSSL's AVX-512 IFMA code), even the floor
comes near 1.5x, so the report says how far above the floor this client is.

``wechatpayv3`` is installed only into ``bench/.venv-bench`` (``run_all.py`` creates
it); run this script with that interpreter::

    bench/.venv-bench/bin/python bench/bench_client.py [--pairs 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from common import RECEIVER, ROOT, SUB_MCHID, report, seed_orders, skip

from django_wxpay_profitsharing.testing.simulator import SimulatorProcess
from django_wxpay_profitsharing.wechatpay import crypto
from django_wxpay_profitsharing.wechatpay.models import ReturnRequest

NAME = "1. client overhead vs wechatpayv3"
TARGET = "wall <= 0.6x theirs; CPU/call <= 1.5x (sign+verify)"
WARMUP = 20
#: The CPU of the calls and of the yardstick are each taken as the median of this
#: many blocks: on 2 shared cores one block can be off by 10-40%.
BLOCKS = 10


def rsa_yardstick(creds: dict, rounds: int = 100) -> float:
    """CPU seconds of one RSA-2048 sign plus one verify (a typical request message)."""
    key = crypto.load_private_key(creds["private_key_path"])
    public = key.public_key()
    message = crypto.request_message(
        "POST", "/v3/profitsharing/return-orders", "1700000000", "N" * 32, b"x" * 160
    )
    signature = crypto.sign(key, message)
    began = time.process_time()
    for _ in range(rounds):
        crypto.sign(key, message)
        crypto.verify(public, message, signature)
    return (time.process_time() - began) / rounds


def ours(base_url: str, creds: dict, orders: list[str], ca: str) -> tuple[int, float, float]:
    from django_wxpay_profitsharing.wechatpay import WeChatPayClient

    client = WeChatPayClient(
        creds["mchid"],
        creds["merchant_serial_no"],
        creds["private_key_path"],
        wechatpay_public_key=creds["wechatpay_public_key_path"],
        wechatpay_public_key_id=creds["wechatpay_public_key_id"],
        base_url=base_url,
        ca_bundle=ca,
    )

    def pair(n: int, order: str) -> None:
        number = f"RO{os.getpid()}x{n}"
        made = client.create_return(
            ReturnRequest(
                out_return_no=number,
                return_mchid=RECEIVER,
                amount=1,
                description="bench",
                out_order_no=order,
                sub_mchid=SUB_MCHID,
            )
        )
        got = client.query_return(out_return_no=number, out_order_no=order, sub_mchid=SUB_MCHID)
        assert made.out_return_no == got.out_return_no == number

    return timed(pair, orders, lambda: rsa_yardstick(creds))


def theirs(base_url: str, creds: dict, orders: list[str], ca: str) -> tuple[int, float, float]:
    from wechatpayv3 import WeChatPay, WeChatPayType

    cert_dir = tempfile.mkdtemp()
    shutil.copy(creds["platform_certificate_path"], Path(cert_dir) / "platform.pem")
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=creds["mchid"],
        private_key=Path(creds["private_key_path"]).read_text(),
        cert_serial_no=creds["merchant_serial_no"],
        appid="wxd678efh567hg6787",
        apiv3_key=creds["apiv3_key"],
        cert_dir=cert_dir,
        partner_mode=True,
        timeout=(3.05, 10),
    )
    pay._core._gate_way = base_url  # the library has the production URL built in

    def pair(n: int, order: str) -> None:
        number = f"RT{os.getpid()}x{n}"
        code, text = pay.profitsharing_return(
            out_return_no=number,
            return_mchid=RECEIVER,
            amount=1,
            description="bench",
            out_order_no=order,
            sub_mchid=SUB_MCHID,
        )
        assert code == 200, text
        code, text = pay.profitsharing_return_query(
            out_order_no=order, out_return_no=number, sub_mchid=SUB_MCHID
        )
        assert code == 200 and json.loads(text)["out_return_no"] == number, text

    return timed(pair, orders, lambda: rsa_yardstick(creds))


def bare(base_url: str, creds: dict, orders: list[str], ca: str) -> tuple[int, float, float]:
    """The floor: only what the protocol requires of any client (``bare_client.py``)."""
    from bare_client import BareClient

    client = BareClient(base_url, creds, ca)

    def pair(n: int, order: str) -> None:
        number = f"RB{os.getpid()}x{n}"
        made, got = client.create_and_query(order, number)
        assert made["out_return_no"] == got["out_return_no"] == number, (made, got)

    return timed(pair, orders, lambda: rsa_yardstick(creds))


#: Each client, run in its own process in this order; ``bare`` is the floor.
RUNNERS = {"wechatpayv3": theirs, "ours": ours, "bare": bare}


def timed(pair, orders: list[str], yardstick) -> tuple[int, float, float, list, list]:
    """Warm up, then run one pair per order in ``BLOCKS`` blocks, the yardstick after each.

    Returns (calls, wall seconds, CPU seconds, CPU seconds per call of each block,
    the yardstick after each block). The yardstick's time is left out of the totals.
    """
    for n, order in enumerate(orders[:WARMUP]):
        pair(n, order)
    measured = orders[WARMUP:]
    size = max(1, len(measured) // BLOCKS)
    blocks = [measured[i : i + size] for i in range(0, len(measured), size)]
    per_call: list[float] = []
    rsa: list[float] = []
    wall = cpu = 0.0
    n = WARMUP
    for block in blocks:
        began_wall, began_cpu = time.perf_counter(), time.process_time()
        for order in block:
            pair(n, order)
            n += 1
        wall += time.perf_counter() - began_wall
        cpu += time.process_time() - began_cpu
        per_call.append((time.process_time() - began_cpu) / (2 * len(block)))
        rsa.append(yardstick())
    return 2 * len(measured), wall, cpu, per_call, rsa


def client_process(which: str, base_url: str, creds_path: str, orders_path: str) -> None:
    creds = json.loads(Path(creds_path).read_text())
    orders = json.loads(Path(orders_path).read_text())
    calls, wall, cpu, blocks, rsa = RUNNERS[which](base_url, creds, orders, creds["ca_bundle_path"])
    print(json.dumps({"calls": calls, "wall": wall, "cpu": cpu, "rsa": rsa, "blocks": blocks}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--client", choices=RUNNERS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--credentials", help=argparse.SUPPRESS)
    parser.add_argument("--orders", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_process(args.client, args.base_url, args.credentials, args.orders)
        return
    try:
        import wechatpayv3  # noqa: F401
    except ImportError:
        skip(NAME, "wechatpayv3 not installed here: run with bench/.venv-bench", TARGET)
        return

    results = {}
    with tempfile.TemporaryDirectory() as state:
        sim = SimulatorProcess(state, mode="both", tls=True).start()
        try:
            orders = seed_orders(sim, args.pairs + WARMUP)
            orders_path = Path(state) / "orders.json"
            orders_path.write_text(json.dumps(orders))
            for which in RUNNERS:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        f"--client={which}",
                        f"--base-url={sim.base_url}",
                        f"--credentials={Path(state) / 'credentials.json'}",
                        f"--orders={orders_path}",
                    ],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                )
                if out.returncode:
                    raise SystemExit(f"{which} failed:\n{out.stderr[-3000:]}")
                results[which] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            sim.stop()

    for which, r in results.items():
        ratios = " ".join(f"{c / y:.2f}" for c, y in zip(r["blocks"], r["rsa"], strict=True))
        print(
            f"{which:12s} {r['calls']} calls in {r['wall']:.2f} s "
            f"({r['wall'] / r['calls'] * 1000:.2f} ms/call wall, "
            f"{median(r['blocks']) * 1000:.3f} ms/call CPU); "
            f"RSA sign+verify {median(r['rsa']) * 1000:.3f} ms; "
            f"CPU/(sign+verify) per block: {ratios}"
        )
    mine, other, floor = results["ours"], results["wechatpayv3"], results["bare"]
    wall_ratio = mine["wall"] / other["wall"]
    cpu_call = median(mine["blocks"])
    cpu_ratio, floor_ratio = (
        median(c / y for c, y in zip(r["blocks"], r["rsa"], strict=True)) for r in (mine, floor)
    )
    over_floor = cpu_call / median(floor["blocks"])
    report(
        NAME,
        f"wall {wall_ratio:.2f}x of wechatpayv3 (target <= 0.6x); "
        f"CPU/call {cpu_ratio:.2f}x sign+verify (target <= 1.5x); "
        f"floor (bare loop) {floor_ratio:.2f}x, ours {over_floor:.2f}x the floor",
        round(wall_ratio, 3),
        TARGET,
        met=wall_ratio <= 0.6 and cpu_ratio <= 1.5,
        ours_ms_per_call=round(mine["wall"] / mine["calls"] * 1000, 3),
        theirs_ms_per_call=round(other["wall"] / other["calls"] * 1000, 3),
        ours_cpu_ms_per_call=round(cpu_call * 1000, 3),
        theirs_cpu_ms_per_call=round(median(other["blocks"]) * 1000, 3),
        bare_cpu_ms_per_call=round(median(floor["blocks"]) * 1000, 3),
        rsa_sign_verify_ms=round(median(mine["rsa"]) * 1000, 3),
        cpu_ratio=round(cpu_ratio, 2),
        floor_cpu_ratio=round(floor_ratio, 2),
        ours_over_floor=round(over_floor, 2),
    )


if __name__ == "__main__":
    main()
