"""Telling "the store cannot be reached" apart from "the store has no such thing".

MLflow raises one exception type for both: a refused connection to a tracking server and a run id
it does not hold. Read as "no run X" or as an empty list, an unreachable or locked-out server
sends a user looking for a mistake in the study; `RunStore` turns the first kind into
`TrackingUnavailable`, which names the URI and what went wrong, and lets the caller decide only
about the second.
"""

from __future__ import annotations

from ablate.errors import AblateError

_AUTH_CODES = {"UNAUTHENTICATED": 401, "CUSTOMER_UNAUTHORIZED": 401, "PERMISSION_DENIED": 403}
# what requests/urllib3 say when no connection was made, if MLflow hands them on as text only
_NETWORK_TEXT = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Connection aborted",
)


class TrackingUnavailable(AblateError):
    """The tracking server did not answer, or refused access: nothing was read or written."""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _network_reason(exc: BaseException) -> str | None:
    import requests

    for item in _chain(exc):
        if isinstance(item, requests.exceptions.Timeout):
            return "no answer in time"
        text = str(item)
        if isinstance(item, (requests.exceptions.ConnectionError, ConnectionError)) or any(
            marker in text for marker in _NETWORK_TEXT
        ):
            lowered = text.lower()
            if "refused" in lowered:
                return "connection refused"
            if "name or service not known" in lowered or "name resolution" in lowered:
                return "unknown host"
            return "no connection"
    return None


def _auth_status(exc: BaseException) -> int | None:
    for item in _chain(exc):
        status = _AUTH_CODES.get(str(getattr(item, "error_code", "")))
        get_status = getattr(item, "get_http_status_code", None)
        if status is None and callable(get_status):
            code = get_status()
            status = code if code in (401, 403) else None
        if status is not None:
            return status
    return None


def unavailable(exc: BaseException, uri: str) -> TrackingUnavailable | None:
    """The error to raise instead of `exc` when it says the store could not be used at all."""
    status = _auth_status(exc)
    if status == 401:
        return TrackingUnavailable(
            f"the tracking server at {uri} refused access (HTTP 401, not authenticated); set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN, or pass "
            "--credentials FILE (the file `ablate server` printed)"
        )
    if status == 403:
        return TrackingUnavailable(
            f"the tracking server at {uri} refused access (HTTP 403, permission denied); "
            "use an account that may read and write this experiment"
        )
    reason = _network_reason(exc)
    if reason is not None:
        return TrackingUnavailable(
            f"cannot reach the tracking server at {uri} ({reason}); start it (`ablate server`), "
            "check the host and port, or pass another --tracking-uri"
        )
    return None
