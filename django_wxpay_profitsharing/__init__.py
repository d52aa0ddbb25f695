"""django-wxpay-profitsharing: claw back WeChat Pay profit-sharing money (分账回退)."""

__version__ = "0.1.0"
