"""The ``openai`` agent: any OpenAI-compatible chat-completions endpoint, streamed.

Works with hosted APIs and local servers (llama.cpp, vLLM, Ollama, LM Studio...).

Options (each falls back to the environment):

* ``base_url`` (``OPENAI_BASE_URL``, default ``https://api.openai.com/v1``);
  requests go to ``<base_url>/chat/completions``.
* ``model`` (``EMDASH_FB_OPENAI_MODEL``, then ``OPENAI_MODEL``): required.
* ``api_key`` (``OPENAI_API_KEY``): sent as ``Authorization: Bearer ...``;
  may be empty for local servers (then no Authorization header is sent).
* ``connect_timeout`` (default 10 s) and ``read_timeout`` (default 120 s: the
  longest wait for the next piece of the reply).

The request is ``{"model", "messages", "stream": true}``. ``messages`` is one
chat message per turn of the conversation:

* a ``system`` message: a shared session with several people, how authors are
  labelled and laid out (see :func:`~emdash_fb.runner.agents.base.system_intro`),
  and the mode;
* each person's message as ``{"role": "user", "name": "alice-3f2a", "content":
  "alice #3f2a: first line\n  │ second line"}`` -- ``name`` is the OpenAI
  participant name, derived from the author's name and uid to fit
  ``^[A-Za-z0-9_-]{1,64}$`` (:func:`chat_name`); since many servers ignore it,
  the author is also the label in front of the content, in the layout where
  every further line sits behind the gutter, so no line of a message can pass
  for another person's;
* the agent's own earlier replies as ``{"role": "assistant", "content": text}``;
* the new message last, like any other person's.

Texts are sent as people see them on screen (cleaned; see
:mod:`emdash_fb.session.text`).

The reply is read as server-sent events (``data: {...}`` lines, ending with
``data: [DONE]``; a stream that simply ends is accepted too). Text comes from
``choices[0].delta.content``. Tool calls come from ``choices[0].delta.tool_calls``
(pieces accumulated by ``index``): a ToolStart as soon as a call's name is known,
and when the stream ends a ToolResult with ``ok=True`` and output
``(requested by the model; not executed)`` -- followed by the call's arguments
when there are any. Tool calls are shown, never executed. A server that ignores
``stream`` and answers with one JSON completion is understood as well.

Failures are :class:`~emdash_fb.runner.agents.base.AgentError`: an HTTP error
status (with the ``error.message`` from the body), an ``error`` object inside
the stream, connection failures and timeouts.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from emdash_fb.runner.agents.base import (
    AgentError,
    AgentEvent,
    ChatMessage,
    Options,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnInput,
    attachment_text,
    format_message,
    message_text,
    safe_id,
    summarize_input,
    system_intro,
    truncate,
)
from emdash_fb.session.text import uid_tag

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NOT_EXECUTED = "(requested by the model; not executed)"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
MAX_NAME = 64


def chat_name(message: ChatMessage) -> str:
    """The OpenAI ``name`` for a person's message: ``^[A-Za-z0-9_-]{1,64}$``.

    The author's name folded to ASCII (accents dropped, anything else becomes
    ``_``; ``user`` when nothing is left), then ``-`` and the uid's tag
    characters, so two people with the same or look-alike names get different
    names: ``José`` with uid ``...3f2a`` is ``Jose-3f2a``.
    """
    ascii_name = unicodedata.normalize("NFKD", message.author)
    ascii_name = ascii_name.encode("ascii", "ignore").decode("ascii")
    base = _NAME_UNSAFE.sub("_", ascii_name).strip("_-") or "user"
    tag = _NAME_UNSAFE.sub("", uid_tag(message.uid))
    if not tag:
        return base[:MAX_NAME]
    return f"{base[: MAX_NAME - len(tag) - 1]}-{tag}"


def build_messages(turn: TurnInput) -> list[dict[str, Any]]:
    """The chat-completions ``messages`` for a turn (see the module docstring).

    Files attached to the new message go with it as content parts: images as
    ``image_url`` parts holding a ``data:`` URL, text files as ``text`` parts
    (``<name>:`` and the text).
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_intro(turn.mode)}]
    for message in (*turn.history, turn.message):
        if message.role == "assistant":
            messages.append({"role": "assistant", "content": message_text(message)})
        else:
            messages.append(
                {"role": "user", "name": chat_name(message), "content": format_message(message)}
            )
    if turn.attachments:
        parts: list[dict[str, Any]] = [{"type": "text", "text": messages[-1]["content"]}]
        for a in turn.attachments:
            if a.is_image:
                url = f"data:{a.media_type};base64,{base64.b64encode(a.data).decode('ascii')}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                parts.append({"type": "text", "text": attachment_text(a)})
        messages[-1]["content"] = parts
    return messages


@dataclass
class _Call:
    id: str
    name: str = ""
    arguments: str = ""
    started: bool = False


class OpenAIAgent:
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        if not model:
            raise AgentError("the openai agent needs a model")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    @classmethod
    def from_options(
        cls, options: Mapping[str, str] | None, env: Mapping[str, str] = os.environ
    ) -> OpenAIAgent:
        opts = Options(
            "openai", options, ("base_url", "model", "api_key", "connect_timeout", "read_timeout")
        )
        model = (
            opts.get("model") or env.get("EMDASH_FB_OPENAI_MODEL") or env.get("OPENAI_MODEL") or ""
        ).strip()
        if not model:
            raise AgentError(
                "the openai agent needs a model: set EMDASH_FB_OPENAI_MODEL (or OPENAI_MODEL) "
                "or the model option"
            )
        base_url = (opts.get("base_url") or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip()
        if not base_url.startswith(("http://", "https://")):
            raise AgentError(
                f"base_url {base_url!r} for the openai agent must start with http(s)://"
            )
        connect = opts.number("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        read = opts.number("read_timeout", DEFAULT_READ_TIMEOUT)
        if connect <= 0 or read <= 0:
            raise AgentError("the openai agent's timeouts must be more than 0")
        api_key = opts.get("api_key")
        if api_key is None:
            api_key = env.get("OPENAI_API_KEY", "")
        return cls(
            model,
            base_url=base_url,
            api_key=api_key.strip(),
            connect_timeout=connect,
            read_timeout=read,
        )

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    async def run(self, turn: TurnInput) -> AsyncIterator[AgentEvent]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "messages": build_messages(turn), "stream": True}
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.connect_timeout,
            sock_connect=self.connect_timeout,
            sock_read=self.read_timeout,
        )
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.url, json=body, headers=headers) as response,
            ):
                if response.status >= 400:
                    raise AgentError(
                        _http_error(response.status, response.reason, await _body(response))
                    )
                content_type = response.headers.get("Content-Type", "").lower()
                if "json" in content_type and "event-stream" not in content_type:
                    for event in _whole_completion(_load_json(await _body(response))):
                        yield event
                    return
                async for event in _read_stream(response):
                    yield event
        except AgentError:
            raise
        except TimeoutError as exc:
            if isinstance(exc, getattr(aiohttp, "ConnectionTimeoutError", ())):
                raise AgentError(
                    f"could not connect to the model endpoint {self.base_url} within "
                    f"{self.connect_timeout:g} s"
                ) from None
            raise AgentError(
                f"the model endpoint {self.base_url} sent nothing for {self.read_timeout:g} s"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else exc
            raise AgentError(
                f"cannot connect to the model endpoint {self.base_url}: {reason}"
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            raise AgentError(
                f"the model endpoint {self.base_url} closed the connection in the middle of the reply"
            ) from None
        except aiohttp.ClientError as exc:
            raise AgentError(
                f"request to the model endpoint {self.base_url} failed: {exc}"
            ) from None


async def _body(response: aiohttp.ClientResponse, limit: int = 1024 * 1024) -> bytes:
    data = b""
    async for chunk in response.content.iter_any():
        data += chunk
        if len(data) > limit:
            break
    return data


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        raise AgentError("the model endpoint sent a reply that is not JSON") from None


def _error_message(obj: Any) -> str:
    """The human message in an error body: ``error.message``, ``error``, ``message``, ``detail``."""
    if not isinstance(obj, dict):
        return ""
    error = obj.get("error")
    if isinstance(error, dict):
        for key in ("message", "type", "code"):
            if error.get(key):
                return str(error[key])
    if isinstance(error, str) and error:
        return error
    for key in ("message", "detail"):
        if obj.get(key):
            value = obj[key]
            return value if isinstance(value, str) else json.dumps(value)
    return ""


def _http_error(status: int, reason: str | None, body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    try:
        message = _error_message(json.loads(text))
    except ValueError:
        message = text
    message = " ".join(message.split())
    if len(message) > 300:
        message = message[:299] + "…"
    label = f"HTTP {status}" + (f" {reason}" if reason and not message else "")
    return f"the model endpoint returned {label}" + (f": {message}" if message else "")


class _StreamState:
    def __init__(self) -> None:
        self.calls: dict[object, _Call] = {}
        self.order: list[object] = []

    def chunk(self, obj: Any) -> list[AgentEvent]:
        if not isinstance(obj, dict):
            return []
        if obj.get("error"):
            message = _error_message(obj) or "unknown error"
            raise AgentError(f"the model endpoint reported an error: {message}")
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []  # e.g. a usage-only chunk
        delta = choices[0].get("delta")
        if not isinstance(delta, dict):
            return []
        events: list[AgentEvent] = []
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(TextDelta(content))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for position, piece in enumerate(tool_calls):
                if isinstance(piece, dict):
                    key = piece.get("index", position)
                    function = piece.get("function")
                    events += self._piece(
                        key, piece.get("id"), function if isinstance(function, dict) else {}
                    )
        function_call = delta.get("function_call")  # the older, single-call form
        if isinstance(function_call, dict):
            events += self._piece("function_call", None, function_call)
        return events

    def _piece(self, key: object, call_id: object, function: dict[str, Any]) -> list[AgentEvent]:
        call = self.calls.get(key)
        if call is None:
            call = self.calls[key] = _Call(id=f"call_{len(self.calls)}")
            self.order.append(key)
        if isinstance(call_id, str) and call_id and not call.started:
            call.id = safe_id(call_id, call.id)
        name = function.get("name")
        if isinstance(name, str) and name and not call.started:
            call.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments += arguments
        if call.name and not call.started:
            call.started = True
            return [ToolStart(id=call.id, name=call.name, input=_arguments_summary(call.arguments))]
        return []

    def finish(self) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        for key in self.order:
            call = self.calls[key]
            if not call.started:
                continue
            output = NOT_EXECUTED
            if call.arguments.strip():
                output += "\narguments: " + truncate(call.arguments.strip())
            events.append(ToolResult(id=call.id, output=output, ok=True))
        return events


def _arguments_summary(arguments: str) -> str:
    try:
        return summarize_input(json.loads(arguments))
    except ValueError:
        return summarize_input(arguments)


async def _read_stream(response: aiohttp.ClientResponse) -> AsyncIterator[AgentEvent]:
    """Parse the SSE body: ``data:`` lines (joined until they form JSON), ``[DONE]``."""
    state = _StreamState()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    data: list[str] = []
    done = False

    def line_events(line: str) -> list[AgentEvent]:
        nonlocal done
        line = line.rstrip("\r")
        if not line:
            if data:
                snippet = " ".join("\n".join(data).split())[:120]
                raise AgentError(f"the model endpoint sent an event that is not JSON: {snippet}")
            return []
        if line.startswith(":") or not line.startswith("data:"):
            return []  # comments, event:, id:, retry:
        value = line[5:].removeprefix(" ")
        if not data and value.strip() == "[DONE]":
            done = True
            return []
        data.append(value)
        try:
            obj = json.loads("\n".join(data))
        except ValueError:
            return []  # maybe continued on the next data: line
        data.clear()
        return state.chunk(obj)

    async for chunk in response.content.iter_any():
        buffer += decoder.decode(chunk)
        *lines, buffer = buffer.split("\n")
        for line in lines:
            for event in line_events(line):
                yield event
            if done:
                break
        if done:
            break
    if not done:
        buffer += decoder.decode(b"", final=True)
        for line in (buffer, ""):
            for event in line_events(line):
                yield event
    for event in state.finish():
        yield event


def _whole_completion(obj: Any) -> list[AgentEvent]:
    """Events for a non-streamed completion (a server that ignored ``stream``)."""
    if isinstance(obj, dict) and obj.get("error"):
        raise AgentError(f"the model endpoint reported an error: {_error_message(obj)}")
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise AgentError("the model endpoint's reply has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return []
    state = _StreamState()
    delta = {"content": message.get("content"), "tool_calls": message.get("tool_calls")}
    events = state.chunk({"choices": [{"delta": delta}]})
    return events + state.finish()
