"""emdash-fb: share one AI coding-agent conversation through Firebase Realtime Database."""

__version__ = "0.1.0"
