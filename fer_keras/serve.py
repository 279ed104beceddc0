"""Emotion recognition as a web service: ``python -m fer_keras.serve [--host 127.0.0.1] [--port 8000]``.

``POST /v1/analyze`` (an image), ``POST /v1/classify`` (48x48 crops), ``GET /healthz``, a browser demo
at ``/`` and the OpenAPI docs at ``/docs`` (``fer_keras.app.serve``). It listens on 127.0.0.1 only
unless ``--host`` says otherwise: anyone who can reach the port can send it images.
"""

from __future__ import annotations

import argparse
import os

from fer_keras.app.detect import DETECTORS
from fer_keras.cli import cli_main, command_parser, options_from
from fer_keras.inference.predictor import MODEL_OPTION_HELP, RUNTIME_HELP, RUNTIMES, check_model_path


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("serve", "Serve emotion recognition over HTTP, with a browser demo page.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--model", default=None, help=MODEL_OPTION_HELP)
    p.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    p.add_argument("--detector", choices=DETECTORS, default="dnn", help="face detector for /v1/analyze")
    p.add_argument(
        "--max-batch", type=int, default=32, help="crops per model call across concurrent requests; 1 = no batching"
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="how long a model call waits for more crops; 0 = an idle model runs at once, and requests "
        "that arrive while it is busy share its next call",
    )
    p.add_argument("--max-queue", type=int, default=64, help="requests served at once; more get 503")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted request body (413 beyond)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for decoding and detection")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fer_keras.app.serve import ServeOptions

    options = options_from(ServeOptions, args)
    options.validate()
    check_model_path(options.model)
    from fer_keras.app.serve import listen_socket

    sock = listen_socket(args.host, args.port)  # a bad or busy port fails here, before the model loads
    import uvicorn

    from fer_keras.app.serve import create_app
    from fer_keras.inference.predictor import limit_tf_threads

    limit_tf_threads(1, 1)  # one model thread runs every call: one TF thread per op is the fastest here
    app = create_app(options)
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    print(f"serving on http://{host}:{port}/ (API docs at /docs); Ctrl-C to stop", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
