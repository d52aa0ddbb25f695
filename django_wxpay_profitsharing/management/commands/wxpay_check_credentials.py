"""``manage.py wxpay_check_credentials [--merchant MCHID ...]``: does WeChat Pay take them?

One cheap signed call per merchant (查询分账回退结果 of a number nobody uses): WeChat
Pay answering "no such return", signed and verified, means it takes the merchant's
signature (MCHID, MERCHANT_SERIAL_NO, PRIVATE_KEY) and the configured WECHATPAY_PUBLIC_KEY
(or platform certificates) verifies its answers. Run it right after deploying. Exit 0
when every merchant passes, 1 otherwise (each failure on stderr, naming the merchant and
what to check; never a key).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import desk
from ...merchants import is_configured

ADVICE = {
    "refused": "check MCHID, MERCHANT_SERIAL_NO and PRIVATE_KEY",
    "unverified": "check WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID, or the certificates",
    "unreachable": "check BASE_URL and the network (a proxy, the firewall)",
    "not_configured": "fix the settings (manage.py check names the key)",
}


class Command(BaseCommand):
    help = "Make one signed call per merchant and say whether WeChat Pay takes its credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--merchant", action="append", metavar="MCHID", help="Only this merchant (repeatable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = options["merchant"]
        for mchid in chosen or ():
            if not is_configured(mchid):
                raise CommandError(f"{mchid!r} is not a configured merchant.")
        failed = 0
        for result in desk.check_credentials(chosen):
            if result.ok:
                self.stdout.write(f"{result.mchid}: WeChat Pay takes its credentials "
                                  f"({result.detail}).")  # fmt: skip
                continue
            failed += 1
            advice = ADVICE.get(result.verdict, "")
            self.stderr.write(f"{result.mchid}: {result.verdict}: {result.detail}; {advice}.")
        if failed:
            raise CommandError(f"{failed} merchant(s) failed the check.", returncode=1)
