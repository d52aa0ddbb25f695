"""A separate process acting on the test database, for crash and multi-process tests.

Usage: ``python -m tests.worker ACTION [PK]`` with ``DATABASE_URL`` naming the test
database and ``WXPAY_TEST_CONFIG`` holding the settings dict as JSON. Actions:

- ``crash-before-call PK``: claim the return (committed), then die before any HTTP call;
- ``crash-after-call PK``: make the call (WeChat accepts it), then die before recording it;
- ``submit PK`` / ``refresh PK``: the normal service call; prints the final state;
- ``process-due``: one ``process_due()`` pass; prints the summary as JSON.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django_wxpay_profitsharing import outbox, polling, services, transitions  # noqa: E402

KILLED = 137


def main(argv: list[str]) -> None:
    action = argv[0]
    if action == "crash-before-call":
        transitions.call = lambda *args: os._exit(KILLED)
        services.submit(int(argv[1]))
    elif action == "crash-after-call":
        real_call = transitions.call

        def call_then_die(*args):
            real_call(*args)
            os._exit(KILLED)

        transitions.call = call_then_die
        services.submit(int(argv[1]))
    elif action == "crash-before-delivery":
        # The final state and its outbox events commit; the process dies before the
        # signals go out (the on_commit delivery never runs).
        outbox.deliver = lambda *args, **kwargs: os._exit(KILLED)
        services.submit(int(argv[1]))
    elif action in ("submit", "refresh"):
        print(getattr(services, action)(int(argv[1])).state, flush=True)
    elif action == "process-due":
        print(json.dumps(polling.process_due()), flush=True)
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
