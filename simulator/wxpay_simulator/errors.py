"""The one exception the simulator's request handling raises for a WeChat-style error.

Why one type: every refusal WeChat Pay gives has the same wire shape
(``{"code", "message", "detail"?}`` with an HTTP status), so validation, the ledger and
the router all raise this and the server turns it into a signed response.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An APIv3 error answer: HTTP ``status``, ``code``, ``message`` and optional ``detail``."""

    def __init__(
        self, status: int, code: str, message: str, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


def param_error(field: str, value: Any, issue: str, location: str = "body") -> ApiError:
    """400 PARAM_ERROR with WeChat's detail shape; ``field`` is a JSON Pointer for the body."""
    return ApiError(
        400,
        "PARAM_ERROR",
        f"参数错误：{field} {issue}",
        {"field": field, "value": value, "issue": issue, "location": location},
    )
