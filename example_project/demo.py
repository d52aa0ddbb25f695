"""``make demo``: migrate, start the WeChat Pay simulator and the shop, print the login.

Runs in the foreground; Ctrl-C stops the site and the simulator together.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from django_wxpay_profitsharing.testing.simulator import SimulatorProcess

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--simulator-port", type=int, default=8765)
    args = parser.parse_args()

    state_dir = HERE / ".simulator"
    env = {**os.environ, "WXPAY_SIMULATOR_DIR": str(state_dir)}
    simulator = SimulatorProcess(state_dir, port=args.simulator_port, processing_seconds=3)
    simulator.start()
    manage = [sys.executable, str(HERE / "manage.py")]
    poller = None
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
        subprocess.run([*manage, "seed_demo"], env=env, check=True)
        # The poller moves PROCESSING returns on, as cron or Celery beat would.
        poller = subprocess.Popen(
            [*manage, "wxpay_process_returns", "--loop", "--interval", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{args.port}"
        print(
            f"\n  Admin:      {url}/admin/   login: admin / admin\n"
            f"  API:        {url}/api/wxpay/returns/\n"
            f"  API docs:   {url}/api/docs/\n"
            f"  Simulator:  http://127.0.0.1:{args.simulator_port}/  (state in {state_dir})\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        subprocess.run(
            [*manage, "runserver", f"127.0.0.1:{args.port}", "--noreload"], env=env, check=False
        )
    except KeyboardInterrupt:
        pass
    finally:
        if poller is not None:
            poller.terminate()
        simulator.stop()


if __name__ == "__main__":
    main()
