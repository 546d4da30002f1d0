"""Errors a user can act on. The CLI prints them without a traceback.

Exit codes: 2 for bad usage or bad input the user wrote (a flag, a project file),
1 for a failure at run time (missing weights, unreadable audio, a lock held).
"""

from __future__ import annotations

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class HiggsError(Exception):
    """A failure with a message for people and, optionally, how to fix it."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict:
        return {"error": self.message, "where": self.where, "hint": self.hint, "exit_code": self.exit_code}


class UsageError(HiggsError):
    """The user asked for something malformed: a bad flag value, empty text, a bad path."""

    exit_code = EXIT_USAGE


class ValidationError(UsageError):
    """A project or voice file has problems; `problems` lists every one of them."""

    def __init__(self, message: str, problems: list[str] | None = None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "problems": self.problems}


class ModelError(HiggsError):
    """Weights are missing, incomplete or unreachable."""


class AudioError(HiggsError):
    """Audio could not be read or is unusable."""


class LockedError(HiggsError):
    """Another higgs process holds the lock on a project or library."""


class OutOfMemory(HiggsError):
    """The model ran out of memory (GPU or host) while generating: a render lowers its batch and goes on."""

    def __init__(self, message: str, *, batch_size: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.batch_size = batch_size
