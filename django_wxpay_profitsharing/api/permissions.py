"""Model permissions for reads too, and the custom ones for submit and refresh.

DRF's ``DjangoModelPermissions`` leaves GET open to any authenticated user; money
records are not for everyone, so reads need ``view_profitsharingreturn``.
"""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView

ACTION_PERMISSIONS = {
    "submit": ["%(app_label)s.submit_%(model_name)s"],
    "bulk_submit": ["%(app_label)s.submit_%(model_name)s"],
    "refresh": ["%(app_label)s.refresh_%(model_name)s"],
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
