"""The ``serve`` command: the emotion API and the browser page, run by uvicorn."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from aidentify.cli.app import ConfigOption, VerboseOption, app, console, err_console, run_guarded, say_config, set_option
from aidentify.config import ServeConfig, load_config
from aidentify.errors import DataError
from aidentify.processes import sigterm_as_interrupt

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ServeSet = set_option("limits.max_upload_mb=20")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on [default: 127.0.0.1, this machine only].",
                                             show_default=False)] = None,
    port: Annotated[int | None, typer.Option("--port", "-p", help="Port [default: 8000].", show_default=False)] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Another model clients may pick: a .keras or .tflite file "
                                                    "or a run folder (repeatable; the shipped model is always 'default').",
                                                    show_default=False)] = None,
    camera: Annotated[int | None, typer.Option("--camera", help="Also stream this camera, labelled, at /stream.mjpg.",
                                               show_default=False)] = None,
    source: Annotated[str | None, typer.Option("--source", help="Also stream this video, image, folder or stream URL at /stream.mjpg.",
                                               show_default=False)] = None,
    study: Annotated[Path | None, typer.Option("--study", help="Also show this finished study's report "
                                               "(an `aidentify analyze` --out folder) at /study.",
                                               show_default=False)] = None,
    config: ConfigOption = None,
    set_: ServeSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Serve the emotion API (/api/predict, /docs) and the browser page with photo, camera and stream views."""

    def work() -> None:
        options = {"host": host, "port": port, "models": model, "camera": camera, "source": source,
                   "study": study}
        cfg, origin = load_config(ServeConfig, config, set_, options, stage="serve")
        say_config(origin)
        if cfg.camera is not None and cfg.source is not None:
            raise DataError("give one of --camera INDEX or --source PATH_OR_URL, not both")
        if cfg.camera is not None:
            from aidentify.live.capture import check_camera_index

            check_camera_index(cfg.camera)  # before workers start: OpenCV crashes on some indices
        if cfg.host not in LOOPBACK:
            err_console.print(f"[bold yellow]warning:[/] listening on {escape(cfg.host)}: anyone who can reach this "
                              "machine on the network can use this server (it has no login); "
                              "the default 127.0.0.1 keeps it to this machine", highlight=False, soft_wrap=True)
        check_port_free(cfg.host, cfg.port)

        from aidentify.serve.app import create_app

        server_app = create_app(cfg)
        service = server_app.state.service
        shown = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        shown = "127.0.0.1" if shown in ("0.0.0.0", "[::]") else shown
        console.print(f"models: {', '.join(service.models)}; face detector: {service.still_detector.name}; "
                      f"{service.pool.size} worker processes")
        if server_app.state.feed is not None:
            console.print(f"stream: {escape(server_app.state.feed.name)} at /stream.mjpg")
        if cfg.study is not None:
            console.print(f"study: {escape(str(cfg.study))} at /study")
            if not (Path(cfg.study) / "report.html").is_file():  # read anew per request: it may come later
                err_console.print(f"[bold yellow]warning:[/] {escape(str(cfg.study))} holds no report.html yet; "
                                  f"/study answers 404 until `aidentify analyze --out {escape(str(cfg.study))}` "
                                  "has finished there", highlight=False, soft_wrap=True)
        console.print(f"[bold]serving on http://{shown}:{cfg.port}[/]  (API docs: /docs; Ctrl-C stops)",
                      highlight=False)
        settings = uvicorn_config(server_app, cfg)
        try:
            # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again with
            # the handlers it found: SIGTERM (`kill`, a service manager) then stops it like Ctrl-C
            with sigterm_as_interrupt():
                StreamingServer(settings, server_app.state.feed).run()
        except KeyboardInterrupt:  # Ctrl-C is how a server is meant to stop
            pass
        console.print("server stopped")

    run_guarded(verbose, work)


def uvicorn_config(server_app, cfg: ServeConfig):
    """uvicorn's settings: its own HTTP protocol with read deadlines and JSON errors (aidentify.serve.protocol)."""
    import uvicorn

    from aidentify.serve.protocol import protocol_class

    return uvicorn.Config(server_app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                          http=protocol_class(cfg.limits), limit_concurrency=None, timeout_graceful_shutdown=5)


def _uvicorn_server():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, which also ends the endless ``/stream.mjpg`` responses when told to stop
        (uvicorn waits for open responses before it shuts the app down)."""

        def __init__(self, config, feed):
            super().__init__(config)
            self.feed = feed

        def handle_exit(self, sig, frame) -> None:
            if self.feed is not None:
                self.feed.end_viewers()
            super().handle_exit(sig, frame)

    return Server


def StreamingServer(config, feed):  # noqa: N802 (a class built on first use: uvicorn is imported lazily)
    return _uvicorn_server()(config, feed)


def check_port_free(host: str, port: int) -> None:
    """Fail with one line when the port is taken (uvicorn would log a traceback-like error and exit)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DataError(f"port {port} on {host} is in use (another server?); pass --port N") from None
            raise DataError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
