"""Errors a tenant can see, in Bedrock's shape.

Every error the gateway returns carries the Bedrock error type (sent as ``x-amzn-ErrorType``)
and HTTP status, so an unmodified boto3 bedrock-runtime client raises the matching exception
class. The mapping from error to HTTP response is done in one place (the gateway handler).
"""

from __future__ import annotations


class TollgateError(Exception):
    status: int = 500
    error_type: str = "InternalServerException"

    def __init__(self, message: str, *, unbilled: bool = False):
        super().__init__(message)
        self.message = message
        #: Bedrock refused the call before doing any work (throttled, unavailable, connection refused):
        #: it was not billed, so the gateway may try again. Anything else may have been billed.
        self.unbilled = unbilled


class BadRequest(TollgateError):
    status = 400
    error_type = "ValidationException"


class AccessDenied(TollgateError):
    status = 403
    error_type = "AccessDeniedException"


class NotFound(TollgateError):
    status = 404
    error_type = "ResourceNotFoundException"


class UnknownOperation(TollgateError):
    status = 404
    error_type = "UnknownOperationException"


class ServiceUnavailable(TollgateError):
    status = 503
    error_type = "ServiceUnavailableException"


class InternalError(TollgateError):
    status = 500
    error_type = "InternalServerException"


class UpstreamError(TollgateError):
    """An error Bedrock returned, passed on with Bedrock's own type and status."""

    def __init__(self, error_type: str, status: int, message: str, *, unbilled: bool = False):
        super().__init__(message, unbilled=unbilled)
        self.error_type = error_type
        self.status = status


#: Converse's documented errors and their HTTP status codes.
BEDROCK_ERROR_STATUS: dict[str, int] = {
    "AccessDeniedException": 403,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 400,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
    "ValidationException": 400,
}


#: Bedrock errors that say the request was refused before any inference (so it was not billed).
UNBILLED_BEDROCK_ERRORS = frozenset({"ThrottlingException", "ServiceUnavailableException"})


def from_bedrock(code: str, message: str) -> UpstreamError:
    """Map a Bedrock error code to what the tenant sees.

    AccessDenied from Bedrock means the gateway's own role is misconfigured, which is not the
    tenant's fault: it becomes a 500 so the caller does not stop retrying a healthy key.
    """
    if code == "AccessDeniedException":
        return UpstreamError("InternalServerException", 500, "the gateway is not allowed to call this model")
    status = BEDROCK_ERROR_STATUS.get(code)
    if status is None:
        return UpstreamError("InternalServerException", 500, f"Bedrock failed: {code}")
    return UpstreamError(code, status, message, unbilled=code in UNBILLED_BEDROCK_ERRORS)


#: What Bedrock's Converse says when the model id (for us: a profile ARN) does not exist.
MISSING_MODEL_MESSAGE = "The provided model identifier is invalid."


def names_a_missing_model(error: UpstreamError) -> bool:
    """Bedrock refused the call because it does not know the model id (a deleted profile ARN).

    Converse answers ``ValidationException: The provided model identifier is invalid.`` for an
    unknown or deleted inference profile ARN, and ``ResourceNotFoundException`` for a model
    that is gone.
    """
    return error.error_type == "ResourceNotFoundException" or (
        error.error_type == "ValidationException" and error.message.strip() == MISSING_MODEL_MESSAGE
    )


class BudgetExceeded(TollgateError):
    """An enforced budget cannot cover the request's worst case: refused before Bedrock, not charged.

    Bedrock's own ``ServiceQuotaExceededException`` (400): boto3 raises it by name and, being a
    400, its standard retry mode does not retry it (a budget does not come back in seconds).
    """

    status = 400
    error_type = "ServiceQuotaExceededException"


class TokenRateExceeded(TollgateError):
    """The tenant's tokens-per-minute limit is used up for this minute: 429, not charged."""

    status = 429
    error_type = "ThrottlingException"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        #: Seconds until the next minute window opens (sent as ``Retry-After``).
        self.retry_after = retry_after
