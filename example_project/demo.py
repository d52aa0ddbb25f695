"""``make demo``: a fresh demo shop, the WeChat Pay simulator and the poller, then the login.

Runs in the foreground; Ctrl-C stops the site, the poller and the simulator together.

- **Fresh every time**: the demo's state (the shop's SQLite database and the simulator's
  state directory) lives in ``.demo/`` at the top of the checkout and is reset at every
  start, so the README's walkthrough can be replayed; ``--keep`` (``make demo
  DEMO_KEEP=1``) continues the previous one instead (the simulator, whose ledger lives
  in memory, is seeded again). ``make clean`` removes ``.demo/``.
- **Its own ports or none**: both ports are tried before anything starts; one in use is
  an error naming it (exit status 1), never a URL that someone else's server answers.
  The admin URL is printed only once the shop that this run started answers: it shows
  a token of this run at ``/demo/instance/``, which no other server knows.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from wxpay_simulator.testing import SimulatorError, SimulatorProcess

HERE = Path(__file__).resolve().parent
STATE_DIR = HERE.parent / ".demo"
#: A simulator run for people: returns stay PROCESSING long enough to be seen.
PROCESSING_SECONDS = 3
SITE_START_TIMEOUT = 120.0
#: In every state directory a demo made: only such a directory is ever emptied.
MARKER = ".wxpay-demo"
#: The example shop answers this token at /demo/instance/ (see shop/urls.py).
TOKEN_VARIABLE = "SHOP_DEMO_INSTANCE"


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:``port`` (or holds it for all addresses).

    ``SO_REUSEADDR`` as Django's and the simulator's servers set it: a port left in
    TIME_WAIT by the previous demo is free for them, so it is free here too.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def busy_ports(ports: dict[str, int]) -> list[str]:
    """One line per port in use, naming it and the option that moves it."""
    return [
        f"Port {port} on 127.0.0.1 ({what}) is already in use by another program: stop it, "
        f"or choose another port ({option}=...)."
        for what, (port, option) in {
            "the shop": (ports["shop"], "make demo DEMO_PORT"),
            "the WeChat Pay simulator": (ports["simulator"], "make demo SIM_PORT"),
        }.items()
        if port_in_use(port)
    ]


class NotADemoDirectory(Exception):
    """The state directory exists, is not empty, and no demo made it: it is not emptied."""


def prepare_state(state_dir: Path, keep: bool) -> str:
    """Empty ``state_dir`` unless ``keep``; says which, for the console.

    Only a directory a demo made (it holds ``MARKER``), or an empty one, is emptied: a
    ``--state-dir`` mistyped as a directory of one's own is refused, never deleted.
    """
    if keep and (state_dir / MARKER).exists():
        return f"Continuing the previous demo in {state_dir} (--keep)."
    if state_dir.exists() and any(state_dir.iterdir()) and not (state_dir / MARKER).exists():
        raise NotADemoDirectory(
            f"{state_dir} is not empty and no demo made it: choose another --state-dir"
        )
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    (state_dir / MARKER).write_text("make demo's state: reset at every start\n", "utf-8")
    return f"A fresh demo in {state_dir} (make demo DEMO_KEEP=1 keeps the previous one)."


def answers_token(url: str, token: str) -> bool | None:
    """True: our shop answered; False: some server answered something else; None: nobody."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return bool(response.read(200).decode("utf-8", "replace").strip() == token)
    except urllib.error.HTTPError:
        return False  # an answer, but not ours
    except OSError:
        return None


def wait_for_our_shop(url: str, token: str, server: subprocess.Popen, timeout: float) -> bool:
    """True once ``url`` shows this run's token; False if our server died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        if answers_token(url, token):
            return True
        time.sleep(0.3)
    return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="the shop (default: %(default)s)")
    parser.add_argument(
        "--simulator-port", type=int, default=8765, help="the simulator (default: %(default)s)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=STATE_DIR,
        help="the demo's database and simulator state (default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="continue the previous demo")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    busy = busy_ports({"shop": args.port, "simulator": args.simulator_port})
    if busy:
        print("\n".join(busy), file=sys.stderr, flush=True)
        return 1
    # A SIGTERM (``timeout``, a process manager) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(prepare_state(args.state_dir, args.keep), flush=True)
    except NotADemoDirectory as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    simulator_dir = args.state_dir / "simulator"
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "WXPAY_SIMULATOR_DIR": str(simulator_dir),
        "SHOP_SQLITE_PATH": str(args.state_dir / "shop.sqlite3"),
        TOKEN_VARIABLE: token,
    }
    simulator = SimulatorProcess(
        simulator_dir, port=args.simulator_port, processing_seconds=PROCESSING_SECONDS
    )
    print("Starting the WeChat Pay simulator ...", flush=True)
    try:
        simulator.start()
    except SimulatorError as exc:
        print(f"The simulator could not start on port {args.simulator_port}: {exc}", flush=True)
        return 1
    manage = [sys.executable, str(HERE / "manage.py")]
    poller = server = None
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
        subprocess.run([*manage, "seed_demo"], env=env, check=True)
        # The poller moves PROCESSING returns and refund jobs on, as cron or Celery beat
        # would. It never sends a draft: the seeded returns wait for the operator, and a
        # refund job for its confirmation.
        poller = subprocess.Popen(
            [*manage, "wxpay_process_returns", "--loop", "--interval", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{args.port}"
        print("Starting the shop ...", flush=True)
        server = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{args.port}", "--noreload"], env=env
        )
        if not wait_for_our_shop(f"{url}/demo/instance/", token, server, SITE_START_TIMEOUT):
            print(
                f"The shop did not start on port {args.port} (see the messages above); "
                "nothing is being served there by this demo.",
                file=sys.stderr,
                flush=True,
            )
            return 1
        print(
            f"\n  Admin:      {url}/admin/   login: admin / admin\n"
            f"  Refund:     {url}/admin/orders/order/  (order SHOP0100, 'Refund this order')\n"
            f"  API:        {url}/api/wxpay/returns/  {url}/api/wxpay/refunds/\n"
            f"  API docs:   {url}/api/docs/\n"
            f"  Simulator:  {simulator.base_url}/_simulator/health  (state in {simulator_dir})\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        return server.wait()
    except subprocess.CalledProcessError as exc:
        print(f"The demo could not be prepared: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in (server, poller):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        simulator.stop()


if __name__ == "__main__":
    sys.exit(main())
