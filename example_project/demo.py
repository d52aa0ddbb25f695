"""``make demo``: migrate, start the WeChat Pay simulator and the shop, print the login.

Runs in the foreground; Ctrl-C stops the site, the poller and the simulator together.
The admin URL is printed only once the site answers, so that what it says is true.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from wxpay_simulator.testing import SimulatorProcess

HERE = Path(__file__).resolve().parent
#: A simulator run for people: returns stay PROCESSING long enough to be seen.
PROCESSING_SECONDS = 3
SITE_START_TIMEOUT = 120.0


def wait_until_answering(url: str, server: subprocess.Popen, timeout: float) -> bool:
    """True once ``url`` answers any HTTP status; False if the server died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own loopback URL)
                return True
        except urllib.error.HTTPError:
            return True  # an answer, even a 4xx/5xx, means the site is up
        except OSError:
            time.sleep(0.3)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the shop (default: %(default)s)")
    parser.add_argument(
        "--simulator-port", type=int, default=8765, help="the simulator (default: %(default)s)"
    )
    args = parser.parse_args()
    # A SIGTERM (``timeout``, a process manager) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    state_dir = HERE / ".simulator"
    env = {**os.environ, "WXPAY_SIMULATOR_DIR": str(state_dir)}
    simulator = SimulatorProcess(
        state_dir, port=args.simulator_port, processing_seconds=PROCESSING_SECONDS
    )
    print("Starting the WeChat Pay simulator ...", flush=True)
    simulator.start()
    manage = [sys.executable, str(HERE / "manage.py")]
    poller = server = None
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
        subprocess.run([*manage, "seed_demo"], env=env, check=True)
        # The poller moves PROCESSING returns on, as cron or Celery beat would. It never
        # sends a draft: the seeded returns wait for the operator.
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
        if not wait_until_answering(f"{url}/admin/login/", server, SITE_START_TIMEOUT):
            print(f"The shop did not answer on {url} (see the messages above).", flush=True)
            return
        print(
            f"\n  Admin:      {url}/admin/   login: admin / admin\n"
            f"  Refund:     {url}/admin/orders/order/  (order SHOP0100, 'Refund this order')\n"
            f"  API:        {url}/api/wxpay/returns/\n"
            f"  API docs:   {url}/api/docs/\n"
            f"  Simulator:  {simulator.base_url}/_simulator/health  (state in {state_dir})\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        server.wait()
    except KeyboardInterrupt:
        pass
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
    main()
