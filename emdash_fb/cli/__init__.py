"""Command-line interface: typer commands and (later) the interactive REPL. Rendering only."""
