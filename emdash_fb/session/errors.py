"""User mistakes in session operations: each is one clear line that says what to do."""

from __future__ import annotations


class SessionError(Exception):
    """Base class; ``str()`` is the line shown to the user."""


class BadInvite(SessionError):
    """Wrong, expired or revoked invite code."""


class NotMember(SessionError):
    """Not (or no longer) a member of the session."""


class Kicked(NotMember):
    """The owner removed you; you cannot rejoin."""


class SessionClosed(SessionError):
    """The session is closed (by its owner or for being idle)."""


class SessionFull(SessionError):
    """The member limit is reached."""


class NotAllowed(SessionError):
    """Your role doesn't permit this (e.g. a viewer sending, a non-owner kicking)."""


class BadMessage(SessionError):
    """Empty or too-long text, unknown message id."""


class NoSession(SessionError):
    """No session chosen: share or join one first."""
