"""Pluggable agents: ``echo`` (offline demo), ``command`` (any agent CLI), ``openai``, and
the native sessions ``claude``, ``codex`` and ``gemini``.

The contract lives in :mod:`emdash_fb.runner.agents.base` and is re-exported
here; :func:`load_agent` builds an agent by name from options and environment.
"""

from emdash_fb.runner.agents.base import (
    AGENT_NAMES,
    Agent,
    AgentError,
    AgentEvent,
    AgentSession,
    ApprovalNeeded,
    Attachment,
    ChatMessage,
    Decision,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnInput,
    build_prompt,
    load_agent,
)

__all__ = [
    "AGENT_NAMES",
    "Agent",
    "AgentError",
    "AgentEvent",
    "AgentSession",
    "ApprovalNeeded",
    "Attachment",
    "ChatMessage",
    "Decision",
    "TextDelta",
    "ToolResult",
    "ToolStart",
    "TurnInput",
    "build_prompt",
    "load_agent",
]
