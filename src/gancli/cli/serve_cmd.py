"""gancli serve CKPT... [--port 8000] [--host 127.0.0.1]: a local web page to explore trained models."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors


@handle_errors
def serve_command(
    checkpoints: list[Path] = typer.Argument(..., help="Checkpoints (.safetensors), exported model folders, or training run folders (the newest checkpoint, reloaded when the run writes another)."),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port (0: any free one; the address is printed)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Loopback by default: anything else lets other machines use the models."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
    max_jobs: int = typer.Option(2, "--max-jobs", help="Generation jobs on worker threads at once (torch runs one at a time); the rest wait in a queue."),
    max_batch: int = typer.Option(64, "--max-batch", help="Most images in one grid, walk or strip."),
) -> None:
    """Explore checkpoints in the browser: seed grids, truncation, classes, walks, style mixing, downloads."""
    from gancli.errors import GancliError
    from gancli.serve import need_serve_extra

    need_serve_extra()
    if not 1 <= max_batch <= 1024:
        raise GancliError(f"--max-batch must lie in 1..1024, got {max_batch}")
    from gancli.serve import server
    from gancli.serve.sources import resolve_sources

    sources = resolve_sources(checkpoints)
    sock = server.bind(host, port)
    try:
        from gancli.serve.app import Limits, build_app
        from gancli.serve.jobs import JobQueue
        from gancli.serve.registry import Registry

        registry = Registry(sources, device=device)
        registry.load_all()
        app = build_app(registry, jobs=JobQueue(max_jobs=max_jobs), limits=Limits(max_batch=max_batch),
                        allowed_hosts=server.allowed_hosts(host))
        if not server.is_loopback(host):
            typer.echo(f"warning: listening on {host}, not loopback: anyone who can reach this machine can use "
                       f"these models and its CPU/GPU time; there is no login", err=True)
        waiting = [m.name for m in registry.models if m.pipeline is None]
        note = f" ({', '.join(waiting)}: waiting for a first checkpoint)" if waiting else ""
        typer.echo(f"serving {len(sources)} model{'s' if len(sources) > 1 else ''} at {server.url_of(sock)}{note} "
                   f"(Ctrl-C stops)", err=True)
        server.run(app, sock)
    finally:
        sock.close()
