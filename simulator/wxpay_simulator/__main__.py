"""``python -m wxpay_simulator`` / ``wxpay-simulator``.

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

#: A simulator started by hand shows PROCESSING for a few seconds before a return settles.
DEFAULT_PROCESSING_SECONDS = 3.0


def build_parser() -> argparse.ArgumentParser:
    """The command line; every option's help says its default (``--help``, the docs)."""
    parser = argparse.ArgumentParser(
        prog="wxpay-simulator",
        description="A local WeChat Pay APIv3 simulator for profit-sharing returns "
        "(请求分账回退, its query, 查询分账结果) with an unsigned control surface under "
        "/_simulator/ for loopback clients. Keys and credentials.json are written into "
        "--state-dir on first start and kept.",
        epilog="Tests and the demo pass every option explicitly "
        "(wxpay_simulator.testing.SimulatorProcess).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=8765, help="port; 0 picks a free one (default: %(default)s)")
    add("--state-dir", required=True, help="directory for the keys and credentials.json (required)")
    add("--mode", choices=MODES, default="public-key",
        help="how answers are signed: the WeChat Pay public key, or platform certificates "
        "(default: %(default)s)")  # fmt: skip
    add("--latency-ms", type=int, default=0,
        help="delay before every answer, in milliseconds (default: %(default)s)")  # fmt: skip
    add("--processing-seconds", type=float, default=DEFAULT_PROCESSING_SECONDS,
        help="how long a return stays PROCESSING before it settles; by hand the default "
        "makes PROCESSING visible, tests pass 0 (default: %(default)s)")  # fmt: skip
    add("--tls", action="store_true",
        help="serve HTTPS with its own CA, in STATE_DIR/ca.pem (default: off)")  # fmt: skip
    add("--qps-limit", type=int, default=30,
        help="requests per second per endpoint before FREQUENCY_LIMITED; 0 = unlimited "
        "(default: %(default)s)")  # fmt: skip
    add("--mchid", default=None,
        help="the merchant id of a new state directory; an existing one keeps its own "
        "(default: 1900000100)")  # fmt: skip
    add("--merchants", type=_positive, default=1,
        help="serve N merchants: --mchid and the N-1 ids that follow, each with its own "
        "keys and serial (default: %(default)s)")  # fmt: skip
    add("--idle-timeout", type=float, default=8.0,
        help="seconds before an idle keep-alive connection is closed, as WeChat Pay does "
        "(default: %(default)s)")  # fmt: skip
    add("--exit-on-stdin-eof", action="store_true",
        help="exit when stdin closes: no simulator outlives its parent (default: off)")  # fmt: skip
    add("--verbose", action="store_true",
        help="log every request to stderr (default: off)")  # fmt: skip
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


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
