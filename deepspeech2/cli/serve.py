"""``ds2-serve --model CKPT|MINDIR [--host 127.0.0.1] [--port 8000]``: the HTTP/WebSocket service and web page."""
from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    from deepspeech2.cli.args import parse_run_args
    from deepspeech2.core.logs import setup_logging
    from deepspeech2.serving.uploads import Limits

    defaults = Limits()
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--model", required=True, help="checkpoint (.ckpt) or exported MINDIR (.mindir)")
    extra.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    extra.add_argument("--port", type=int, default=8000)
    extra.add_argument("--max_upload_mb", type=float, default=defaults.max_upload_bytes / (1 << 20))
    extra.add_argument("--max_audio_seconds", type=float, default=defaults.max_audio_seconds)
    extra.add_argument("--max_pending", type=int, default=defaults.max_pending,
                       help="requests waiting for the model worker; more get HTTP 503")
    flags = {"device_target": "train.device_target"}   # decoding is greedy: word times need its alignment
    cfg, args = parse_run_args(argv, "ds2-serve", "Serve a model over HTTP/WebSocket with a web page.", flags,
                               extra=extra)
    setup_logging()
    import uvicorn

    from deepspeech2.inference.acoustic import load_acoustic_model
    from deepspeech2.serving.app import create_app

    try:
        model = load_acoustic_model(args.model, cfg)
    except (ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    limits = Limits(int(args.max_upload_mb * (1 << 20)), args.max_audio_seconds, args.max_pending)
    app = create_app(model, limits)
    log.info("serving %s on http://%s:%d/", args.model, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", ws_max_size=limits.max_frame_bytes + 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
