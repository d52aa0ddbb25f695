"""What the desk answers: one typed result per operation, rendered alike by every door.

Why typed: the admin turns a result into counted, translated messages and the API into
JSON; both read the same fields (each row's :class:`RowOutcome`, what was queued,
what was refused and why), so an outcome is never worded at one door and forgotten at
the other. Failures the caller must act on are exceptions instead (``desk.errors``).
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from ..conf import TaskBackend
from ..models.clawbacks import ProfitSharingClawback
from ..models.returns import ProfitSharingReturn
from ..states import ReturnState
from .policy import Disposition


class RowOutcome(enum.StrEnum):
    """What became of one row an operation touched, as a person reads it."""

    SUCCEEDED = "succeeded"
    #: Sent; WeChat Pay is processing it.
    PROCESSING = "processing"
    #: Processing, waiting for its receiver to top up (re-sent on the poll schedule).
    WAITING = "waiting"
    FAILED = "failed"
    REJECTED = "rejected"
    #: No definite answer: retried later with the same number.
    RETRY = "retry"
    #: Not in a state for this action, or held by another worker: nothing done.
    SKIPPED = "skipped"
    #: Left (or made) a draft: nobody allowed asked to send it.
    DRAFT = "draft"
    #: Refused by a rule (the ledger, a permission); :class:`Refusal` says why.
    REFUSED = "refused"


def outcome_of(row: ProfitSharingReturn, ran: bool) -> RowOutcome:
    """The outcome of an attempt on ``row`` (``ran`` False: it was skipped)."""
    if not ran:
        return RowOutcome.SKIPPED
    if row.state == ReturnState.PENDING:
        return RowOutcome.RETRY
    if row.state == ReturnState.DRAFT:
        return RowOutcome.DRAFT
    if row.is_awaiting_topup:
        return RowOutcome.WAITING
    return RowOutcome(row.state)


@dataclass(frozen=True)
class Refusal:
    """A row an operation did not act on, and why (a field and a message, as a form has)."""

    pk: int
    number: str
    field: str
    message: str


@dataclass
class Batch:
    """What an operation did to its rows.

    ``ran`` are the attempts made on this request (row, and whether it ran);
    ``queued`` rows were handed to ``backend`` and are answered later; ``skipped``
    selected rows were not in a state for the operation; ``drafts`` were left drafts;
    ``refused`` were stopped by a rule, each with its reason; ``made`` are rows the
    operation created ("Claw back again").
    """

    ran: list[tuple[ProfitSharingReturn, bool]] = field(default_factory=list)
    queued: int = 0
    backend: TaskBackend | None = None
    skipped: int = 0
    drafts: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    made: list[ProfitSharingReturn] = field(default_factory=list)

    def counts(self) -> Counter[RowOutcome]:
        """How many rows ended each way (queued rows are not counted: not known yet)."""
        counts: Counter[RowOutcome] = Counter(outcome_of(row, ran) for row, ran in self.ran)
        counts[RowOutcome.SKIPPED] += self.skipped
        counts[RowOutcome.DRAFT] += len(self.drafts)
        counts[RowOutcome.REFUSED] += len(self.refused)
        return +counts

    def reasons(self, outcome: RowOutcome) -> Counter[str]:
        """Why rows ended ``outcome``: WeChat's fail_reason, or the refusing code."""
        reasons: Counter[str] = Counter()
        for row, ran in self.ran:
            if outcome_of(row, ran) is not outcome:
                continue
            if outcome is RowOutcome.FAILED:
                reasons[row.fail_reason or "-"] += 1
            elif outcome is RowOutcome.REJECTED:
                reasons[row.last_error_code or "-"] += 1
        return reasons

    def rows(self) -> list[ProfitSharingReturn]:
        return [row for row, _ran in self.ran]

    def merge(self, other: Batch) -> Batch:
        """This batch and ``other`` together (one operation over several groups)."""
        return Batch(
            ran=[*self.ran, *other.ran],
            queued=self.queued + other.queued,
            backend=self.backend or other.backend,
            skipped=self.skipped + other.skipped,
            drafts=[*self.drafts, *other.drafts],
            refused=[*self.refused, *other.refused],
            made=[*self.made, *other.made],
        )


@dataclass
class ReturnMade:
    """A return made (or found again: ``created`` False) and what sending it did."""

    row: ProfitSharingReturn
    created: bool
    disposition: Disposition
    batch: Batch = field(default_factory=Batch)


@dataclass
class Cancelled:
    """Clawbacks cancelled (``done``) and those refused, each with why."""

    done: list[ProfitSharingClawback] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


@dataclass
class ClawbackMade:
    """A clawback made (or found again) and what sending its returns did."""

    clawback: ProfitSharingClawback
    created: bool
    disposition: Disposition
    batch: Batch = field(default_factory=Batch)
