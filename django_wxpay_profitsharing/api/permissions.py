"""Model permissions for reads too, and the custom ones for the actions.

DRF's ``DjangoModelPermissions`` leaves GET open to any authenticated user; money
records are not for everyone, so reads need ``view_<model>`` (returns, clawbacks,
sharing orders alike).

Each action names the permissions it needs on the viewset's own model:

- ``submit`` / ``bulk_submit``: ``submit_<model>`` (a return's, or a clawback's:
  ``submit_profitsharingclawback``; its returns are approved by the service layer,
  which also wants ``submit_profitsharingreturn``, see ``services.may_submit``);
- ``refresh``: ``refresh_profitsharingreturn``;
- ``retry`` ("retry now", the identical request re-sent): ``submit_profitsharingreturn``:
  it sends money movement, but approves nothing new;
- ``claw_back_again``: ``add_profitsharingreturn``: it creates a return; that return
  is sent at once only if the user may submit too (the draft rules), else a draft;
- ``cancel`` (a clawback nothing of which was sent, as a whole):
  ``cancel_profitsharingclawback``;
- ``sync`` (a sharing order's mirror, from WeChat Pay): ``add_profitsharingorder``:
  it creates the mirror the first time and only ever writes WeChat's answer into it,
  so the permission that lets a user bring in a sharing order is the one asked;
- a refund job's routes (their own action names, so that each name has one rule):
  ``refund_refresh`` (the job looks now; it moves nothing a person did not approve):
  ``view_refundjob``; ``refund_proceed``, ``refund_retry``, ``refund_to_merchant_bank``,
  ``refund_cancel``, ``refund_try_again`` (an operator's action): ``operate_refundjob``;
  its ``submit`` (approve) is ``submit_refundjob`` as above.
"""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView

ACTION_PERMISSIONS = {
    "submit": ["%(app_label)s.submit_%(model_name)s"],
    "bulk_submit": ["%(app_label)s.submit_%(model_name)s"],
    "refresh": ["%(app_label)s.refresh_%(model_name)s"],
    "retry": ["%(app_label)s.submit_%(model_name)s"],
    "claw_back_again": ["%(app_label)s.add_%(model_name)s"],
    "sync": ["%(app_label)s.add_%(model_name)s"],
    "cancel": ["%(app_label)s.cancel_%(model_name)s"],
    "refund_refresh": ["%(app_label)s.view_%(model_name)s"],
    "refund_proceed": ["%(app_label)s.operate_%(model_name)s"],
    "refund_retry": ["%(app_label)s.operate_%(model_name)s"],
    "refund_to_merchant_bank": ["%(app_label)s.operate_%(model_name)s"],
    "refund_cancel": ["%(app_label)s.operate_%(model_name)s"],
    "refund_try_again": ["%(app_label)s.operate_%(model_name)s"],
}


class ProfitSharingReturnPermissions(DjangoModelPermissions):
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        action = getattr(view, "action", None)
        if action in ACTION_PERMISSIONS:
            if not (request.user and request.user.is_authenticated):
                return False
            model = view.get_queryset().model  # type: ignore[attr-defined]
            params = {"app_label": model._meta.app_label, "model_name": model._meta.model_name}
            return bool(request.user.has_perms([p % params for p in ACTION_PERMISSIONS[action]]))
        return super().has_permission(request, view)
