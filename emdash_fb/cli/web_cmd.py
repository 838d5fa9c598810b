"""``emdash-fb web``: serve the browser viewer against the configured project, in the foreground."""

from __future__ import annotations

import signal
import threading

import typer

from ..firebase.errors import ConfigError
from ..webview import DEFAULT_PORT, ENV_WEB_URL, WebFilesMissing, WebServer, web_dir
from .commands import ctx_of


def web(
    ctx: typer.Context,
    port: int = typer.Option(
        DEFAULT_PORT, "--port", min=0, max=65535, help="Port to serve on (0: any free one)."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0 to reach it from a phone)."
    ),
) -> None:
    """Serve the web viewer: a static page that joins by invite code and follows the session."""
    app = ctx_of(ctx)
    try:
        target = app.target
        server = WebServer(target, web_dir(app.env), host, port)
        url = server.start()
    except (ConfigError, WebFilesMissing) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: could not listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    print(f"web viewer for {target.describe()}", flush=True)
    print(f"  open {url}  (invite links: {url}#code=CODE)", flush=True)
    if url != f"http://127.0.0.1:{DEFAULT_PORT}/":
        print(f"  so /share prints this address: export {ENV_WEB_URL}={url}", flush=True)
    print("Ctrl-C to stop", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
