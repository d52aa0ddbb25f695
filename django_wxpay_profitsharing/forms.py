"""The admin's add/change form: the amount in yuan, every field validated as WeChat Pay does."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .conf import wxpay_settings
from .models import IDENTITY_FIELDS, ProfitSharingReturn
from .services import validate_return_fields

REQUEST_FIELDS = ("sub_mchid", "order_id", "out_order_no", "out_return_no", "return_mchid")

# django-stubs makes ModelForm generic; Django's own class cannot be subscripted at run time.
if TYPE_CHECKING:
    _ModelForm = forms.ModelForm[ProfitSharingReturn]
else:
    _ModelForm = forms.ModelForm


def yuan_to_fen(value: Decimal) -> int:
    """Exact: ``Decimal("12.34")`` is 1234 fen; no float is ever involved."""
    return int((value * 100).to_integral_exact())


class ProfitSharingReturnForm(_ModelForm):
    amount_yuan = forms.DecimalField(
        label=_("amount (yuan)"),
        min_value=Decimal("0.01"),
        max_digits=18,
        decimal_places=2,
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
            self.initial["amount_yuan"] = self.instance.amount_yuan

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
            mchid=wxpay_settings.MCHID, out_return_no=number
        ).first()
        if existing is None:
            return
        wanted = {name: cleaned.get(name) or "" for name in IDENTITY_FIELDS}
        wanted["amount"] = cleaned["amount"]
        if any(getattr(existing, name) != value for name, value in wanted.items()):
            raise ValidationError(
                {"out_return_no": [_("This out_return_no is already used for another return.")]}
            )
