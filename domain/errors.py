"""Named errors raised by the domain's invariants.

The API maps each family to one HTTP status in one place (api/errors.py):
``InvalidDefinition`` -> 422, ``InvalidTransition`` -> 409.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises; ``str(err)`` is a message for the user."""


class InvalidDefinition(DomainError):
    """A definition (agent, crew, execution request) breaks an invariant."""


class InvalidTransition(DomainError):
    """A change that the aggregate's current state does not allow."""


class AlreadyArchived(InvalidTransition):
    """The agent or crew is archived; it can no longer change."""


class AlreadyStarted(InvalidTransition):
    """The execution was started before: another runner drives it."""


class ExecutionFinished(InvalidTransition):
    """The execution reached a terminal state; it accepts no more changes."""


class TamperedEvent(DomainError):
    """An event's hash does not match its content or its predecessor's hash."""
