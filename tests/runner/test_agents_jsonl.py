"""The jsonl translator's less common shapes, fed line by line (the stream itself is
exercised through real subprocesses in test_agents_command.py)."""

from __future__ import annotations

import json

from emdash_fb.runner.agents import TextDelta, ToolResult, ToolStart
from emdash_fb.runner.agents.jsonl import JsonlTranslator


def feed(*objs) -> tuple[list, JsonlTranslator]:
    translator = JsonlTranslator()
    events = []
    for obj in objs:
        events += translator.feed_line(obj if isinstance(obj, str) else json.dumps(obj))
    return events, translator


def test_string_content_and_separators():
    events, _ = feed(
        {"type": "assistant", "message": {"content": "First."}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Second.\n"}]}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Third."}]}},
    )
    assert events == [
        TextDelta("First."),
        TextDelta("\n\n"),
        TextDelta("Second.\n"),
        TextDelta("Third."),
    ]


def test_tool_result_content_forms_and_generated_ids():
    events, _ = feed(
        {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Web"}]}},
        {
            "type": "user",
            "message": {
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "tool-1",
                        "content": [{"type": "text", "text": "a"}, {"type": "image"}, "b"],
                    },
                    {"type": "text", "text": "not a tool result"},
                ]
            },
        },
        {"type": "tool_result", "tool_use_id": "x", "content": {"rows": 2}, "is_error": True},
        {"type": "user", "message": {"content": "a replayed prompt"}},
    )
    assert events == [
        ToolStart("tool-1", "Web", ""),
        ToolResult("tool-1", "a\n[image]\nb", True),
        ToolResult("x", '{"rows": 2}', False),
    ]


def test_error_shapes():
    for line, expected in [
        ({"type": "error", "error": {"message": "overloaded"}}, "overloaded"),
        ({"type": "error", "error": "rate limited"}, "rate limited"),
        ({"type": "error"}, "the agent reported an error"),
        ({"type": "result", "subtype": "error_during_execution", "errors": ["x", "y"]}, "x; y"),
    ]:
        events, translator = feed(line)
        assert events == [] and translator.error == expected


def test_garbage_is_harmless():
    events, translator = feed(
        "null",
        '"a string"',
        {"type": 5},
        {"type": "assistant"},
        {"type": "assistant", "message": {"content": [1, None, {"type": "text", "text": 3}]}},
        {"type": "user", "message": None},
        {"type": "stream_event", "event": "x"},
        {"type": "result", "subtype": "success", "result": None},
        "   ",
    )
    assert events == [] and translator.error is None


def test_tool_ids_are_key_safe_and_results_without_ids_pair_up():
    events, _ = feed(
        {"type": "tool_start", "id": "a.b/c[1]$#", "name": "x", "input": ""},
        {"type": "tool_start", "name": "y", "input": ""},
        {"type": "tool_result", "output": "for y"},
        {"type": "tool_result", "id": "a.b/c[1]$#", "output": "for x"},
        {"type": "tool_result", "output": "orphan"},
        {"type": "tool_start", "id": "z" * 300, "name": "long"},
    )
    assert events == [
        ToolStart("a_b_c_1___", "x", ""),
        ToolStart("tool-2", "y", ""),
        ToolResult("tool-2", "for y", True),
        ToolResult("a_b_c_1___", "for x", True),
        ToolResult("tool-3", "orphan", True),
        ToolStart("z" * 100, "long", ""),
    ]
