"""A separate process moving one refund job, for the refund crash and race tests.

Usage: ``python -m tests.refund_worker ACTION PK`` with ``DATABASE_URL`` naming the test
database and ``WXPAY_TEST_CONFIG`` holding the settings dict as JSON (as
``tests/worker.py``, the returns' worker). Actions:

- ``run PK``: ``refund_machine.run`` once; prints the job's state;
- ``crash-after-STEP PK``: the job run until its step STEP (``inspect``, ``unfreeze``,
  ``confirm_unfreeze``, ``claw_back``, ``refund``, ``query_refund``) has made its
  WeChat Pay call(s); then the process dies (``kill -9``: no apply, no commit, no
  cleanup). For ``claw_back`` it dies right after the first return's POST, inside the
  returns' own machinery;
- ``crash-before-delivery PK``: the job run; the first state whose signal goes out
  commits with its outbox event, and the process dies before the signal is sent.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django_wxpay_profitsharing import outbox, refund_machine, transitions  # noqa: E402
from django_wxpay_profitsharing.refund_states import RefundStep  # noqa: E402

KILLED = 137
CRASH = "crash-after-"


def die_after(step: RefundStep) -> None:
    if step is RefundStep.CLAW_BACK:
        real_return_call = transitions.call

        def return_then_die(*args, **kwargs):
            real_return_call(*args, **kwargs)
            os._exit(KILLED)

        transitions.call = return_then_die
        return
    real_call = refund_machine.call

    def call_then_die(claimed, client=None):
        result = real_call(claimed, client)
        if claimed.step is step:
            os._exit(KILLED)
        return result

    refund_machine.call = call_then_die


def main(argv: list[str]) -> None:
    action, pk = argv[0], int(argv[1])
    if action.startswith(CRASH):
        die_after(RefundStep(action[len(CRASH) :]))
        for _ in range(20):  # the job's steps, due or not, until the one to die after
            refund_machine.run(pk, force=True)
        raise SystemExit(f"refund job {pk} never took the step {action[len(CRASH) :]}")
    if action == "crash-before-delivery":
        outbox.deliver = lambda *args, **kwargs: os._exit(KILLED)
        refund_machine.run(pk, force=True)
        raise SystemExit(f"refund job {pk} sent no signal")
    if action == "run":
        print(refund_machine.run(pk).state, flush=True)
        return
    raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
