"""A reconciliation's working set on disk: the bill's returns and what was found.

Why a file and not a dict: a platform's daily bill holds up to a million rows, and
comparing it with the local returns needs the bill's returns grouped by number (a
return may be split over several rows) and looked up by number (is this local
success in the bill?). Held in Python, that set grows with the bill (the issue that
asked for this saw a 2.9 GiB peak). A private SQLite file (the standard library's
``sqlite3``, in the run's temporary directory) sorts, groups and indexes on disk in a
few MiB of page cache, so memory stays flat whatever the size of the bill. The
discrepancies found wait there too, until the run is written in one transaction.

No Django here: ``reconcile.py`` reads the local returns and writes the run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .wechatpay.bill_parser import BillRow, BusinessType

#: Rows written, or groups and numbers looked up, per statement.
BATCH = 500


@dataclass(frozen=True)
class Group:
    """The bill's rows of one return: one (initiator, sub-merchant, number)."""

    initiator: str
    sub_mchid: str
    out_return_no: str
    amount: int
    statuses: tuple[str, ...]  # sorted, distinct


@dataclass(frozen=True)
class Found:
    """A discrepancy before it is saved."""

    out_return_no: str
    kind: str
    local_amount: int | None
    wechat_amount: int | None
    #: What the sentence a person reads is made of (``reconcile_words.describe``).
    facts: dict[str, Any] = field(default_factory=dict)


class Staging:
    """The SQLite file of one run: load the bill, group it, keep what was found."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, "staging.sqlite3")
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA temp_store = FILE;
            CREATE TABLE bill (
                initiator TEXT NOT NULL, sub_mchid TEXT NOT NULL,
                out_return_no TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL
            );
            CREATE TABLE found (
                seq INTEGER PRIMARY KEY, out_return_no TEXT NOT NULL, kind TEXT NOT NULL,
                local_amount INTEGER, wechat_amount INTEGER, facts TEXT NOT NULL
            );
            """
        )
        self.found_count = 0

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, rows: Iterable[BillRow]) -> tuple[int, int]:
        """Keep the return rows of ``rows``; (rows read, return rows)."""
        counted = [0, 0]

        def returns() -> Iterator[tuple[str, str, str, int, str]]:
            for row in rows:
                counted[0] += 1
                if row.business_type is BusinessType.RETURN:
                    counted[1] += 1
                    yield row.initiator, row.sub_mchid, row.out_return_no, row.amount, row.status

        with self._transaction():
            self.db.executemany("INSERT INTO bill VALUES (?, ?, ?, ?, ?)", returns())
        self.db.execute("CREATE INDEX bill_key ON bill (out_return_no, sub_mchid, initiator)")
        return counted[0], counted[1]

    def groups(self) -> Iterator[list[Group]]:
        """The bill's returns grouped, by number, in lists of at most :data:`BATCH`."""
        cursor = self.db.execute(
            "SELECT initiator, sub_mchid, out_return_no, SUM(amount), GROUP_CONCAT(status, ' ')"
            " FROM bill GROUP BY out_return_no, sub_mchid, initiator"
            " ORDER BY out_return_no, sub_mchid, initiator"
        )
        while batch := cursor.fetchmany(BATCH):
            yield [
                Group(initiator, sub, number, amount, tuple(sorted(set(statuses.split()))))
                for initiator, sub, number, amount, statuses in batch
            ]

    def in_bill(self, initiator: str, numbers: list[str]) -> set[tuple[str, str]]:
        """Which of ``numbers`` (at most :data:`BATCH`) the bill holds as (sub_mchid, number)
        for ``initiator``."""
        marks = ", ".join("?" * len(numbers))  # placeholders only: the values are bound
        where = f"out_return_no IN ({marks}) AND initiator = ?"
        query = "SELECT DISTINCT sub_mchid, out_return_no FROM bill WHERE " + where  # noqa: S608
        rows = self.db.execute(query, [*numbers, initiator])
        return {(sub, number) for sub, number in rows}

    def add(self, found: Iterable[Found]) -> None:
        """Keep discrepancies, in the order found."""
        values = [
            (f.out_return_no, f.kind, f.local_amount, f.wechat_amount, json.dumps(f.facts))
            for f in found
        ]
        if values:
            with self._transaction():
                self.db.executemany(
                    "INSERT INTO found (out_return_no, kind, local_amount, wechat_amount, facts)"
                    " VALUES (?, ?, ?, ?, ?)",
                    values,
                )
            self.found_count += len(values)

    def found(self, size: int) -> Iterator[list[Found]]:
        """What was found, in order, in lists of at most ``size``."""
        cursor = self.db.execute(
            "SELECT out_return_no, kind, local_amount, wechat_amount, facts FROM found ORDER BY seq"
        )
        while batch := cursor.fetchmany(size):
            yield [
                Found(number, kind, local, wechat, json.loads(facts))
                for number, kind, local, wechat, facts in batch
            ]

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    """BEGIN ... COMMIT around a batch of writes (autocommit otherwise)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, kind: object, *exc: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
