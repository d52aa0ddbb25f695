"""Benchmark 8, reconciliation: a day's bill of a million lines in bounded memory.

Why: a platform's daily profit-sharing bill runs to a million rows. Read whole, it
was refused by the transport past 8 MiB, and parsed at a 2.9 GiB peak. The bill is now
streamed to a temporary file, checked, read row by row and compared through a SQLite
file on disk, so the peak should not grow with the bill.

What runs: a GZIP bill of ``--lines`` detail rows (a tenth of them returns; nine in
ten of those are local returns that succeeded that day, the rest discrepancies, and
one local success in a hundred is missing from the bill) is served by a plain HTTP
server on 127.0.0.1 and reconciled by ``reconcile()`` through the real client and
urllib3 transport (only the signed 申请分账账单 answer is skipped: its link is given).
The baseline, in a process started the same way (Django set up, the same database),
is a plain ``gzip`` + ``csv`` pass over the same file, counting rows. Each is a fresh
process; its peak RSS (``VmHWM``) is the figure. The same is done with a bill of a
tenth of the lines, to show the peak does not grow with the bill.

Target: our peak within 2x the plain pass's at ``--lines``, and within 1.25x our own
peak at a tenth of the lines (flat).

    .venv/bin/python bench/bench_reconcile.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import http.server
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import RECEIVER, SUB_MCHID, report, setup_django

NAME = "8. reconcile a 10^6-line bill: peak RSS"
TARGET = "peak RSS <= 2x a plain gzip+csv pass, and flat from 10^5 to 10^6 lines"
MCHID = "1900000100"
BEIJING = dt.timezone(dt.timedelta(hours=8))
DOWNLOAD_PATH = "/v3/billdownload/file?token=bench"
RETURN_EVERY = 10  # one detail row in ten is a return
MISSING_EVERY = 10  # one return in ten has no local row
GHOST_EVERY = 100  # one local success in a hundred is not in the bill


def bill_date() -> dt.date:
    return dt.datetime.now(BEIJING).date()


def header() -> list[str]:
    """The detail header as the parser's table names it (first name of each field)."""
    from django_wxpay_profitsharing.wechatpay.bill_parser import DETAIL_HEADERS

    seen: dict[str, str] = {}
    for name, field in DETAIL_HEADERS.items():
        seen.setdefault(field, name)
    return list(seen.values())


def write_bill(path: Path, lines: int) -> tuple[str, int]:
    """A GZIP bill of ``lines`` detail rows at ``path``; (SHA1 of the plain file, returns)."""
    rng = random.Random(lines)
    names = header()
    sha1 = hashlib.sha1()

    class Hashing:
        def __init__(self, out) -> None:
            self.out = out

        def write(self, text: str) -> None:
            data = text.encode()
            sha1.update(data)
            self.out.write(data)

    totals = {"分账": [0, 0], "回退": [0, 0]}
    with gzip.open(path, "wb", compresslevel=6) as raw:
        writer = csv.writer(Hashing(raw), lineterminator="\r\n")
        writer.writerow(names)
        for n in range(lines):
            is_return = n % RETURN_EVERY == 0
            kind = "回退" if is_return else "分账"
            fen = 1 + rng.randrange(100_000)
            totals[kind][0] += 1
            totals[kind][1] += fen
            values = {
                "create_time": "2026-12-01 10:00:00",
                "initiator": MCHID,
                "sponsor": RECEIVER if is_return else SUB_MCHID,
                "sub_mchid": SUB_MCHID,
                "transaction_id": f"4200{rng.randrange(10**24):024d}",
                "order_id": f"3008{rng.randrange(10**24):024d}",
                "out_order_no": f"P{n // 3}",
                "detail_id": "" if is_return else f"3601{rng.randrange(10**24):024d}",
                "return_id": f"3005{n:012d}" if is_return else "",
                "out_return_no": f"R{n}" if is_return else "",
                "receiver_type": "MERCHANT_ID",
                "receiver_account": RECEIVER,
                "amount": f"{fen // 100}.{fen % 100:02d}",
                "business_type": kind,
                "status": "成功",
                "description": "分账回退" if is_return else "分给商户",
            }
            writer.writerow(["`" + values[f] for f in field_order(names)])
        writer.writerow(["分账总笔数", "分账总金额(元)", "回退总笔数", "回退总金额(元)"])
        (splits, split_fen), (returns, return_fen) = totals["分账"], totals["回退"]
        writer.writerow([splits, f"{split_fen / 100:.2f}", returns, f"{return_fen / 100:.2f}"])
    return sha1.hexdigest(), totals["回退"][0]


def field_order(names: list[str]) -> list[str]:
    from django_wxpay_profitsharing.wechatpay.bill_parser import DETAIL_HEADERS

    return [DETAIL_HEADERS[name] for name in names]


def seed_local(lines: int) -> int:
    """The local side: nine in ten of the bill's returns, and ghosts; how many rows."""
    from django.utils import timezone

    from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

    rng = random.Random(lines)
    finish = dt.datetime.combine(bill_date(), dt.time(12), BEIJING)
    rows = []
    for n in range(lines):
        fen = 1 + rng.randrange(100_000)  # the same draws as write_bill's, in its order
        rng.randrange(10**24)
        rng.randrange(10**24)
        if n % RETURN_EVERY:
            rng.randrange(10**24)
            continue
        if (n // RETURN_EVERY) % MISSING_EVERY == 0:
            continue
        rows.append((f"R{n}", fen))
    ghosts = [(f"G{n}", 1) for n in range(len(rows) // GHOST_EVERY)]
    now = timezone.now()
    ProfitSharingReturn.objects.bulk_create(
        (
            ProfitSharingReturn(
                mchid=MCHID,
                sub_mchid=SUB_MCHID,
                out_order_no="P1",
                out_return_no=number,
                return_mchid=RECEIVER,
                amount=fen,
                description="bench",
                state=ReturnState.SUCCEEDED,
                result="SUCCESS",
                finish_time=finish,
                next_attempt_at=now,
            )
            for number, fen in rows + ghosts
        ),
        batch_size=2000,
    )
    return len(rows) + len(ghosts)


class FileServer:
    """Serves one file at any path on 127.0.0.1 until closed (the bill's download)."""

    def __init__(self, path: Path) -> None:
        size = path.stat().st_size

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                with open(path, "rb") as file:
                    while chunk := file.read(1 << 20):
                        self.wfile.write(chunk)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def memory_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in KiB.

    Why not ``ru_maxrss``: Linux carries the parent's peak into a child started with
    ``fork``/``vfork`` + ``exec``, so a child would report the parent's seeding peak.
    ``VmHWM`` belongs to the process's own address space, new at ``exec``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def child(kind: str, bill: str, digest: str, base_url: str) -> None:
    """One measured pass in this fresh process; prints its figures as JSON."""
    setup_django(os.environ["DATABASE_URL"], {"MCHID": MCHID})
    from django_wxpay_profitsharing.reconcile import reconcile
    from django_wxpay_profitsharing.wechatpay import WeChatPayClient
    from django_wxpay_profitsharing.wechatpay.bills import BillLink

    before = memory_kib("VmRSS")
    began = time.perf_counter()
    if kind == "plain":
        with gzip.open(bill, "rt", encoding="utf-8-sig", newline="") as text:
            rows = sum(1 for _ in csv.reader(text))
        figures = {"rows": rows}
    else:
        keys = json.loads(os.environ["BENCH_KEYS"])
        client = WeChatPayClient(
            MCHID,
            "BENCH0SERIAL",
            keys["private"],
            wechatpay_public_key=keys["public"],
            wechatpay_public_key_id="PUB_KEY_ID_0000BENCH",
            base_url=base_url,
        )
        link = BillLink(base_url + DOWNLOAD_PATH, "SHA1", digest)
        client.apply_bill = lambda *args, **kwargs: link  # type: ignore[method-assign]
        run = reconcile(bill_date(), client=client)
        figures = {
            "rows": run.rows,
            "return_rows": run.return_rows,
            "matched": run.matched,
            "discrepancies": run.discrepancy_count,
        }
    seconds = time.perf_counter() - began
    peak = memory_kib("VmHWM")
    print(json.dumps({**figures, "before_kib": before, "peak_kib": peak, "seconds": seconds}))


def measure(kind: str, bill: Path, digest: str, base_url: str, env: dict) -> dict:
    command = [sys.executable, __file__, "--child", kind, str(bill), digest, base_url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"{kind} pass failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def keys() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "private": private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "public": private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }


def size_run(lines: int, work: Path, env: dict) -> dict:
    """Both passes over a bill of ``lines`` rows, on a database seeded for it."""
    from django_wxpay_profitsharing.models import ProfitSharingReturn, ReconciliationRun

    ReconciliationRun.objects.all().delete()
    ProfitSharingReturn.objects.all().delete()
    began = time.perf_counter()
    bill = work / f"bill-{lines}.csv.gz"
    digest, returns = write_bill(bill, lines)
    local = seed_local(lines)
    prepared = time.perf_counter() - began
    server = FileServer(bill)
    try:
        plain = measure("plain", bill, digest, server.base_url, env)
        ours = measure("reconcile", bill, digest, server.base_url, env)
    finally:
        server.close()
    assert plain["rows"] == lines + 3, plain  # header, summary header, summary row
    assert ours["rows"] == lines and ours["return_rows"] == returns, ours
    print(
        f"{lines:>9} lines ({bill.stat().st_size / 2**20:.1f} MiB GZIP, {returns} returns, "
        f"{local} local; prepared in {prepared:.0f} s): plain gzip+csv peak "
        f"{plain['peak_kib'] / 1024:.0f} MiB in {plain['seconds']:.1f} s; reconcile peak "
        f"{ours['peak_kib'] / 1024:.0f} MiB in {ours['seconds']:.1f} s "
        f"({ours['matched']} matched, {ours['discrepancies']} discrepancies)",
        flush=True,
    )
    return {"lines": lines, "plain": plain, "ours": ours, "bytes": bill.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=4, metavar=("KIND", "BILL", "SHA1", "BASE_URL"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory(prefix="wxpay-bench-reconcile-") as directory:
        work = Path(directory)
        url = f"sqlite://{work / 'bench.sqlite3'}"
        setup_django(url, {"MCHID": MCHID})
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "BENCH_KEYS": json.dumps(keys()),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        small = size_run(max(1000, args.lines // 10), work, env)
        large = size_run(args.lines, work, env)

    ours, plain = large["ours"]["peak_kib"], large["plain"]["peak_kib"]
    ratio = ours / plain
    growth = ours / small["ours"]["peak_kib"]
    report(
        NAME,
        f"peak RSS {ours / 1024:.0f} MiB at {args.lines} lines = {ratio:.2f}x a plain "
        f"gzip+csv pass ({plain / 1024:.0f} MiB); {growth:.2f}x our own peak at "
        f"{small['lines']} lines; {large['ours']['seconds'] / large['plain']['seconds']:.1f}x "
        "its time",
        round(ratio, 3),
        TARGET,
        met=ratio <= 2 and growth <= 1.25,
        lines=args.lines,
        peak_mib=round(ours / 1024, 1),
        plain_peak_mib=round(plain / 1024, 1),
        small_lines=small["lines"],
        small_peak_mib=round(small["ours"]["peak_kib"] / 1024, 1),
        growth=round(growth, 3),
        seconds=round(large["ours"]["seconds"], 1),
        plain_seconds=round(large["plain"]["seconds"], 1),
        gzip_mib=round(large["bytes"] / 2**20, 1),
    )


if __name__ == "__main__":
    main()
