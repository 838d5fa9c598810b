"""A scripted HTTP server for failure paths the emulator never produces (5xx, hangs, silence).

Each request takes the next step of the script (the last step repeats) and is
recorded, so tests can count exactly how many attempts a client made.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    status: int = 200
    body: Any = None
    hang: float = 0.0  # sleep this long before answering (longer than the client's timeout)
    stream_silence: bool = False  # answer 200 text/event-stream, then send nothing
    stream: bytes | None = None  # answer 200 text/event-stream with these bytes, then end


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StubServer:
    script: list[Step] = field(default_factory=lambda: [Step()])
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                step = stub.script[min(len(stub.seen), len(stub.script)) - 1]
                if step.hang:
                    time.sleep(step.hang)
                if step.stream_silence:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                    self.end_headers()
                    self.wfile.flush()
                    time.sleep(5)
                    return
                if step.stream is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                    self.send_header("Content-Length", str(len(step.stream)))
                    self.end_headers()
                    self.wfile.write(step.stream)
                    return
                payload = json.dumps(step.body).encode()
                self.send_response(step.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out hang up mid-reply; that is the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host_port(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
