"""Exceptions of the shoal client, one per status code (doc/python.md).

Every exception carries the status code (`code`, an int of shoal.proto's
StatusCode), its name (`status`) and the server's or the library's message,
which says what was wrong and where.
"""


class ShoalError(Exception):
    """Base of every error the client raises."""

    code = 9
    status = "INTERNAL"

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self):
        return "%s: %s" % (self.status, self.message)


class InvalidArgument(ShoalError):
    """A bad request: nothing was done."""

    code, status = 1, "INVALID_ARGUMENT"


class NotFound(ShoalError):
    code, status = 2, "NOT_FOUND"


class AlreadyExists(ShoalError):
    code, status = 3, "ALREADY_EXISTS"


class FailedPrecondition(ShoalError):
    """E.g. a read_your_writes token from a term that lost its entries."""

    code, status = 4, "FAILED_PRECONDITION"


class Unavailable(ShoalError):
    """No node could take the request (no leader, all unreachable): a write
    was not applied."""

    code, status = 5, "UNAVAILABLE"


class DeadlineExceeded(ShoalError):
    """The deadline passed: a write may or may not be applied."""

    code, status = 6, "DEADLINE_EXCEEDED"


class ResourceExhausted(ShoalError):
    """A queue, memory or disk limit was reached (a full disk: read-only)."""

    code, status = 7, "RESOURCE_EXHAUSTED"


class Unauthenticated(ShoalError):
    """The node requires an API key, and none or a wrong one was sent."""

    code, status = 8, "UNAUTHENTICATED"


class Internal(ShoalError):
    code, status = 9, "INTERNAL"


class OutcomeUnknown(ShoalError):
    """A write that may or may not be applied (its connection or its
    leader was lost after it was sent): read it back, or send it again."""

    code, status = 10, "OUTCOME_UNKNOWN"


class PermissionDenied(ShoalError):
    """The API key's role may not do this."""

    code, status = 11, "PERMISSION_DENIED"


class SessionExpired(ShoalError):
    """A write of a client session the cluster no longer holds: not applied
    now, an earlier copy unknown (the Client starts a new session and sends
    a first attempt again by itself)."""

    code, status = 12, "SESSION_EXPIRED"


_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Unavailable,
        DeadlineExceeded,
        ResourceExhausted,
        Unauthenticated,
        Internal,
        OutcomeUnknown,
        PermissionDenied,
        SessionExpired,
    )
}


def error_for(code, message):
    """The exception for a status code (ShoalError for an unknown one)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return ShoalError(message, code)
    return cls(message)
