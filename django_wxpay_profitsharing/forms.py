"""The admin's add/change form: the amount in yuan, every field validated as WeChat Pay does."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .merchants import default_mchid
from .models import IDENTITY_FIELDS, ProfitSharingReturn
from .services import validate_return_fields

REQUEST_FIELDS = ("sub_mchid", "order_id", "out_order_no", "out_return_no", "return_mchid")


#: Yuan as an operator types it: ASCII digits, at most two decimals, nothing else.
#: Why not ``DecimalField``: ``Decimal()`` also reads "1e3", "1_000", "١٢" and
#: "１００", none of which an operator means as an amount of money.
YUAN_RE = re.compile(r"[0-9]{1,17}(?:\.[0-9]{1,2})?")
NOT_YUAN = _("Enter yuan in ASCII digits with at most two decimals, e.g. 12.34.")
TOO_LITTLE_YUAN = _("Enter at least 0.01 yuan.")


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


class ProfitSharingReturnForm(_ModelForm):
    amount_yuan = YuanField(
        label=_("amount (yuan)"),
        help_text=_("In yuan, at most two decimals: 12.34 is sent as 1234 fen."),
    )

    class Meta:
        model = ProfitSharingReturn
        fields = (*REQUEST_FIELDS, "description")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "out_return_no" in self.fields:  # absent once it is read-only
            self.fields["out_return_no"].required = False
            self.fields["out_return_no"].help_text = _("Left blank, a time-ordered number is made.")
        if self.instance.pk:
            self.initial["amount_yuan"] = f"{self.instance.amount_yuan:.2f}"

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
            validate_return_fields(
                {
                    **{
                        name: cleaned.get(name, getattr(self.instance, name, None)) or None
                        for name in REQUEST_FIELDS
                    },
                    "amount": cleaned["amount"],
                    "description": cleaned.get("description"),
                }
            )
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
            mchid=default_mchid(), out_return_no=number
        ).first()
        if existing is None:
            return
        wanted = {name: cleaned.get(name) or "" for name in IDENTITY_FIELDS}
        wanted["amount"] = cleaned["amount"]
        if any(getattr(existing, name) != value for name, value in wanted.items()):
            raise ValidationError(
                {"out_return_no": [_("This out_return_no is already used for another return.")]}
            )
