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


class NameTaken(SessionError):
    """Someone in the session already goes by this name (or one that looks like it)."""


class TooManyWaiting(SessionError):
    """The member already has as many messages waiting as the session allows."""


class NoSession(SessionError):
    """No session chosen: share or join one first."""
