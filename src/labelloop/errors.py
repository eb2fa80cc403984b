"""Domain errors.

Every error a user can cause is a :class:`LabelloopError` with a message that
says what was expected, what arrived, and (in ``hint``) how to fix it. The CLI
prints ``str(err)`` on one line and exits non-zero; the API maps
``http_status`` to a JSON response.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "FormatError",
    "InvalidInputError",
    "JobError",
    "LabelloopError",
    "NotFoundError",
    "PermissionDeniedError",
    "TooManyAttemptsError",
    "TrainingError",
    "UpstreamError",
    "WeightsUnavailableError",
]


class LabelloopError(Exception):
    """Base of every error labelloop reports to a user."""

    http_status = 400

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InvalidInputError(LabelloopError):
    """A value given by the user is malformed or out of range."""

    http_status = 422


class FormatError(InvalidInputError):
    """An annotation file does not follow its format; names the file and the record."""

    def __init__(self, message: str, hint: str | None = None, *, file: str | None = None,
                 record: str | None = None) -> None:
        where = ""
        if file:
            where = f"{file}"
            if record:
                where += f" [{record}]"
            where += ": "
        super().__init__(where + message, hint)
        self.file = file
        self.record = record
        self.reason = message


class ConfigError(InvalidInputError):
    """A configuration, argument string or setting is invalid."""


class NotFoundError(LabelloopError):
    """A project, image, annotation, model or job does not exist."""

    http_status = 404


class ConflictError(LabelloopError):
    """An update was based on a stale version, or a name is already taken."""

    http_status = 409


class PermissionDeniedError(LabelloopError):
    """The current user may not do this."""

    http_status = 403


class TooManyAttemptsError(PermissionDeniedError):
    """Too many failed attempts in a short time (logins): wait, then try again."""

    http_status = 429


class TrainingError(LabelloopError):
    """Training cannot start or could not go on (for example a NaN loss)."""

    http_status = 422


class WeightsUnavailableError(TrainingError):
    """Pre-trained weights are not installed locally; nothing is ever downloaded."""


class UpstreamError(LabelloopError):
    """Another service this one relies on (a Label Studio server) is unreachable or refused a request."""

    http_status = 502


class JobError(LabelloopError):
    """A background job failed or cannot be run."""
