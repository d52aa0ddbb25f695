"""Money as a person reads it: yuan, from the fen WeChat Pay and the API count in.

Why one place: every page, message and command that shows an amount to an operator
says it the same way (``¥1,234.56``), while the API, the models and WeChat Pay keep
fen, integers that never round.
"""

from __future__ import annotations

from decimal import Decimal


def yuan(fen: int | None) -> str:
    """``¥1,234.56`` from fen (``-`` for none)."""
    if fen is None:
        return "-"
    return f"¥{Decimal(fen) / 100:,.2f}"
