"""The errors the API itself finds in a request (a header, a key, a query...), by name.
Their statuses and codes are mapped with every other error's, in ``api/errors.py``."""

from __future__ import annotations


class ApiError(Exception):
    headers: dict[str, str] | None = None

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if headers is not None:
            self.headers = headers


class Unauthorized(ApiError):
    headers = {"WWW-Authenticate": "Bearer"}


class TokenKeysUnavailable(ApiError):
    """The token issuer's JWKS could not be loaded (503, retry)."""


class Forbidden(ApiError):
    pass


class ResourceNotFound(ApiError):
    def __init__(self, kind: str, item_id: str) -> None:
        super().__init__(f"{kind} {item_id} not found")


class InvalidIfMatch(ApiError):
    pass


class InvalidIdempotencyKey(ApiError):
    pass


class InvalidCorrelationId(ApiError):
    pass


class InvalidLastEventId(ApiError):
    pass


class InvalidQuery(ApiError):
    pass


class ProjectionBehind(ApiError):
    def __init__(self, what: str, reached: int, wanted: int) -> None:
        super().__init__(f"{what} is at position {reached}, not yet {wanted}; retry shortly",
                         {"Retry-After": "1"})


class RevocationPending(ApiError):
    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"api key {key_id} is revoked in the log, but authentication does not refuse it "
            "yet (the read model is behind): retry the DELETE shortly; it answers 200 once "
            "no API process accepts the key", {"Retry-After": "1"})


class LiveFeedUnavailable(ApiError):
    pass


class SearchUnavailable(ApiError):
    pass


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes (KASAL_MAX_BODY_BYTES)")


class HeadersTooLarge(ApiError):
    def __init__(self, what: str) -> None:
        super().__init__(f"too many or too large headers: {what}")


class RateLimited(ApiError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many requests for this key or tenant; retry in {retry_after_s} s",
                         {"Retry-After": str(retry_after_s)})


class PositionAhead(ApiError):
    def __init__(self, wanted: int, head: int) -> None:
        super().__init__(f"min_position {wanted} is past the log's head ({head}): pass a "
                         "position a write answered with")


class BodyTimeout(ApiError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g} s")


class WorkspaceUnavailable(ApiError):
    """This process serves no workspace (the app was built without one): 503."""


class FileTooLarge(ApiError):
    """A workspace upload over the workspace's file limit: the one body that is not held to
    KASAL_MAX_BODY_BYTES (api/limits.py), but to this, as it streams in."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is over the workspace's limit of {limit} bytes "
                         f"({limit / (1024 * 1024):g} MiB)")
