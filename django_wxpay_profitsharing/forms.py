"""The admin's forms: a return in yuan, every field validated as WeChat Pay does; a clawback;
a refund.

The return's add form also picks the merchant (a choice of the configured ones; hidden,
and the one merchant, when only one is configured).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .access import merchants_in_scope
from .clawbacks import ACCOUNTS_NEEDED
from .conf import wxpay_settings
from .merchants import default_mchid, merchants
from .models.clawbacks import AllocationPolicy
from .models.returns import (
    IDENTITY_FIELDS,
    REQUEST_ID_FIELDS,
    ProfitSharingReturn,
    pick_request_fields,
)
from .services import validate_return_fields
from .validation_messages import translated
from .wechatpay import errors, validation
from .wechatpay.models import RETURN_REQUEST_FIELDS

#: Yuan as an operator types it: ASCII digits, at most two decimals, nothing else.
#: Why not ``DecimalField``: ``Decimal()`` also reads "1e3", "1_000", "١٢" and
#: "１００", none of which an operator means as an amount of money.
YUAN_RE = re.compile(r"[0-9]{1,17}(?:\.[0-9]{1,2})?")
NOT_YUAN = _("Enter yuan in ASCII digits with at most two decimals, e.g. 12.34.")
TOO_LITTLE_YUAN = _("Enter at least 0.01 yuan.")
PAGE_ALTERED = _("The confirmation page was altered; start again.")


def yuan_to_fen(value: Decimal) -> int:
    """Exact: ``Decimal("12.34")`` is 1234 fen; no float is ever involved."""
    return int((value * 100).to_integral_exact())


class YuanField(forms.Field):
    """An amount in yuan, cleaned to a ``Decimal`` of at most two places (0.01 up)."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "maxlength": 20})

    def to_python(self, value: Any) -> Decimal | None:
        text = "" if value in self.empty_values else str(value).strip()
        if not text:
            return None
        if not YUAN_RE.fullmatch(text):
            raise ValidationError(NOT_YUAN, code="invalid")
        amount = Decimal(text)
        if amount < Decimal("0.01"):
            raise ValidationError(TOO_LITTLE_YUAN, code="min_value")
        return amount


if TYPE_CHECKING:
    _ModelForm = forms.ModelForm[ProfitSharingReturn]
else:  # Django's ModelForm takes no type argument at run time
    _ModelForm = forms.ModelForm


def limit_merchant_choices(field: forms.Field, user: Any) -> None:
    """A merchant field's choices: the configured merchants ``user`` may act for.

    Hidden when there is one choice at most (one merchant: nothing to pick).
    """
    offered = merchants_in_scope(user, list(merchants()))
    field.choices = [(mchid, mchid) for mchid in offered]  # type: ignore[attr-defined]
    field.initial = default_mchid() if default_mchid() in offered else next(iter(offered), "")
    field.widget = (
        forms.HiddenInput()
        if len(offered) <= 1
        else forms.Select(
            choices=field.choices  # type: ignore[attr-defined]
        )
    )


class ProfitSharingReturnForm(_ModelForm):
    mchid = forms.ChoiceField(
        label=_("merchant id"),
        required=False,
        help_text=_("The merchant whose sharing order the money is returned on."),
    )
    amount_yuan = YuanField(
        label=_("amount (yuan)"),
        help_text=_("In yuan, at most two decimals: 12.34 is sent as 1234 fen."),
    )

    class Meta:
        model = ProfitSharingReturn
        fields = (*REQUEST_ID_FIELDS, "description")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "out_return_no" in self.fields:  # absent once it is read-only
            self.fields["out_return_no"].required = False
            self.fields["out_return_no"].help_text = _("Left blank, a time-ordered number is made.")
        if self.instance.pk:
            self.initial["amount_yuan"] = f"{self.instance.amount_yuan:.2f}"
        if "mchid" in self.fields:  # absent once it is read-only (an existing return)
            limit_merchant_choices(self.fields["mchid"], None)

    def limit_merchants(self, user: Any) -> None:
        """Offer only the merchants ``user`` may act for (``MERCHANT_SCOPE``)."""
        if "mchid" in self.fields:
            limit_merchant_choices(self.fields["mchid"], user)

    def clean_mchid(self) -> str:
        """The merchant picked; left empty (or hidden), the default merchant."""
        return str(self.cleaned_data.get("mchid") or default_mchid())

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if "amount_yuan" not in self.fields or "amount_yuan" not in cleaned:
            return cleaned
        cleaned["amount"] = yuan_to_fen(cleaned["amount_yuan"])
        # ``amount`` is not a form field, so the model validation that follows clean()
        # (instance.full_clean) only sees the fen if they are put on the instance here.
        self.instance.amount = cleaned["amount"]
        try:
            # Read-only fields (an existing draft's number) are the instance's own.
            given = {name: getattr(self.instance, name, None) for name in RETURN_REQUEST_FIELDS}
            validate_return_fields({**given, **pick_request_fields(cleaned)})
            self._check_number_is_free(cleaned)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                target = "amount_yuan" if field == "amount" else field
                for message in messages:
                    self.add_error(target if target in self.fields else None, message)
        return cleaned

    def _check_number_is_free(self, cleaned: dict[str, Any]) -> None:
        """An existing out_return_no is only accepted with the very same request."""
        number = cleaned.get("out_return_no")
        if self.instance.pk or not number:
            return
        existing = ProfitSharingReturn.objects.filter(
            mchid=cleaned.get("mchid") or default_mchid(), out_return_no=number
        ).first()
        if existing is None:
            return
        wanted = {name: cleaned.get(name) or "" for name in IDENTITY_FIELDS}
        wanted["amount"] = cleaned["amount"]
        if any(getattr(existing, name) != value for name, value in wanted.items()):
            raise ValidationError(
                {"out_return_no": [_("This out_return_no is already used for another return.")]}
            )


class ClawbackForm(forms.Form):
    """What an operator asks of "Claw back" on a sharing order, before the allocation."""

    amount_yuan = YuanField(
        label=_("amount (yuan)"),
        required=False,
        help_text=_("Empty: everything returnable. At most two decimals."),
    )
    policy = forms.ChoiceField(
        label=_("allocation policy"),
        choices=AllocationPolicy.choices,
        initial=AllocationPolicy.PROPORTIONAL,
    )
    accounts = forms.CharField(
        label=_("accounts, in order"),
        required=False,
        help_text=_("In the order of the given accounts: the merchant receivers to take "
                    "from, in turn, separated by commas or spaces."),
    )  # fmt: skip
    description = forms.CharField(label=_("description"), max_length=80)

    def clean_accounts(self) -> list[str]:
        return [
            part for part in re.split(r"[\s,]+", self.cleaned_data.get("accounts") or "") if part
        ]

    def clean_description(self) -> str:
        try:
            return validation.validate_description(self.cleaned_data.get("description"))
        except errors.InvalidRequest as exc:
            raise ValidationError(str(translated(exc.message))) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("policy") == AllocationPolicy.IN_ORDER and not cleaned.get("accounts"):
            self.add_error("accounts", ACCOUNTS_NEEDED)
        amount = cleaned.get("amount_yuan")
        cleaned["amount"] = None if amount is None else yuan_to_fen(amount)
        return cleaned

    def service_fields(self) -> dict[str, Any]:
        """The clawback's own fields (the sharing order's are the caller's to add)."""
        data = self.cleaned_data
        return {
            "amount": data["amount"],
            "policy": data["policy"],
            "accounts": data["accounts"],
            "description": data["description"],
        }


class RefundForm(forms.Form):
    """What an operator asks of "Refund" on a sharing order, before the plan is shown.

    ``out_refund_no`` is made when the form is first shown and travels with it (a
    hidden field): pressing "Show the plan" twice finds the same job, never a second.
    """

    out_refund_no = forms.CharField(widget=forms.HiddenInput, max_length=64)
    amount_yuan = YuanField(label=_("amount (yuan)"), help_text=_("At most two decimals."))
    reason = forms.CharField(
        label=_("reason"), required=False, max_length=200,
        help_text=_("Shown to the customer; at most 80 bytes are sent."),
    )  # fmt: skip
    allow_unfreeze = forms.BooleanField(
        label=_("may unfreeze"),
        required=False,
        help_text=_("Unfreeze what is still frozen of the payment when the refund needs it."),
    )

    def __init__(self, data: Any = None, *, out_refund_no: str = "") -> None:
        initial = {"out_refund_no": out_refund_no,
                   "allow_unfreeze": bool(wxpay_settings.REFUND_ALLOW_UNFREEZE)}  # fmt: skip
        super().__init__(data, initial=initial)

    def clean_out_refund_no(self) -> str:
        try:
            return validation.validate_out_no(self.cleaned_data["out_refund_no"], "out_refund_no")
        except errors.InvalidRequest:
            raise ValidationError(PAGE_ALTERED) from None

    def clean_reason(self) -> str:
        reason = self.cleaned_data.get("reason") or ""
        try:
            return validation.validate_reason(reason) if reason else ""
        except errors.InvalidRequest as exc:
            raise ValidationError(str(translated(exc.message))) from None

    def desk_fields(self) -> dict[str, Any]:
        """The refund's own fields (the payment's, from the sharing order, are the caller's)."""
        data = self.cleaned_data
        return {
            "out_refund_no": data["out_refund_no"],
            "amount": yuan_to_fen(data["amount_yuan"]),
            "reason": data["reason"],
            "allow_unfreeze": bool(data["allow_unfreeze"]),
        }


class SyncOrderForm(forms.Form):
    """The numbers 查询分账结果 needs to find a sharing order at WeChat Pay, and whose it is.

    The merchant is a choice of the configured ones the user may act for (hidden with
    one): a second merchant's sharing order is synced, and clawed back, like the first's.
    """

    mchid = forms.ChoiceField(
        label=_("merchant id"),
        required=False,
        help_text=_("The merchant whose sharing order it is."),
    )
    out_order_no = forms.CharField(label=_("merchant sharing order no."), max_length=64)
    transaction_id = forms.CharField(label=_("WeChat transaction id"), max_length=32)
    sub_mchid = forms.CharField(
        label=_("sub-merchant id"), max_length=32, required=False,
        help_text=_("Partner mode only: the sub-merchant that receives the money back."),
    )  # fmt: skip

    #: Each field's check, the client's own (its message translated).
    CHECKS: ClassVar[dict[str, Callable[[Any], str]]] = {
        "out_order_no": lambda v: validation.validate_out_no(v, "out_order_no"),
        "transaction_id": validation.validate_transaction_id,
        "sub_mchid": lambda v: validation.validate_mchid(v, "sub_mchid") if v else "",
    }

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit_merchant_choices(self.fields["mchid"], user)

    def clean_mchid(self) -> str | None:
        return str(self.cleaned_data.get("mchid") or "") or None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, check in self.CHECKS.items():
            if name in cleaned:
                try:
                    cleaned[name] = check(cleaned[name])
                except errors.InvalidRequest as exc:
                    self.add_error(name, str(translated(exc.message)))
        cleaned["sub_mchid"] = cleaned.get("sub_mchid") or None
        return cleaned
