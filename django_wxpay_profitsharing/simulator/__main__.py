"""``python -m django_wxpay_profitsharing.simulator`` / ``wxpay-simulator``.

Prints ``WXPAY_SIMULATOR_READY <base_url>`` on stdout once it accepts connections; all
other output goes to stderr, so a parent reading stdout never blocks the simulator.
With ``--exit-on-stdin-eof`` it exits when its stdin closes, which is how a parent
(tests, the demo) guarantees no server outlives it, even after a crash of the parent.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .launch import build_server
from .signing import MODES


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="wxpay-simulator",
        description="A local WeChat Pay APIv3 simulator for profit-sharing returns.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--state-dir", required=True, help="keys and credentials.json live here")
    parser.add_argument("--mode", choices=MODES, default="public-key")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--processing-seconds", type=float, default=0.0)
    parser.add_argument("--tls", action="store_true", help="serve HTTPS (CA in STATE_DIR/ca.pem)")
    parser.add_argument(
        "--qps-limit", type=int, default=30, help="per merchant and endpoint; 0 = unlimited"
    )
    parser.add_argument("--mchid", default=None, help="default 1900000100 (kept once created)")
    parser.add_argument(
        "--merchants",
        type=_positive,
        default=1,
        help="serve N merchants: --mchid and the N-1 following ids, each with its own keys",
    )
    parser.add_argument("--idle-timeout", type=float, default=8.0, help="keep-alive idle close")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _exit_when_stdin_closes(stop: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the simulator until interrupted (or until stdin closes, if asked)."""
    args = parse_args(argv)
    server, record = build_server(
        args.state_dir,
        host=args.host,
        port=args.port,
        mode=args.mode,
        tls=args.tls,
        processing_seconds=args.processing_seconds,
        latency_ms=args.latency_ms,
        qps_limit=args.qps_limit,
        mchid=args.mchid,
        merchants=args.merchants,
        idle_timeout=args.idle_timeout,
        verbose=args.verbose,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.exit_on_stdin_eof:
        threading.Thread(target=_exit_when_stdin_closes, args=(stop,), daemon=True).start()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    serving.daemon = True
    serving.start()
    print(f"WXPAY_SIMULATOR_READY {record['base_url']}", flush=True)
    print(
        f"wxpay-simulator: {record['base_url']} mode={args.mode} state={args.state_dir}",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
