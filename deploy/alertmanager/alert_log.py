"""The compose stack's own alert receiver: prints every alert Alertmanager delivers, one line each.

    python alert_log.py --listen 0.0.0.0:5001     # `docker compose logs -f alert-log`

Alertmanager's receivers in alertmanager.yml post their webhooks here (one path each:
/page, /partner, /ticket), so a fresh stack shows its alerts arriving without any key or
account. Replace them with Slack, PagerDuty or e-mail receivers (examples in
alertmanager.yml) when you go to production.

The body is Alertmanager's webhook message, version 4: prometheus/alertmanager,
notify/webhook/webhook.go (`Message`, which embeds template/template.go's `Data`: `receiver`,
`status`, `alerts[]` with `status`, `labels`, `annotations`, `startsAt`, `endsAt`).
Standard library only: it runs in any Python 3.11 image.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20  # Alertmanager's messages are a few kB; refuse anything absurd


def format_alert(path: str, receiver: str, alert: dict) -> str:
    """One line: severity, state, name, the routing labels, then the summary (Sloth's
    sloth_* labels repeat network and sli: left out)."""
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    severity = str(labels.get("severity", "-")).upper()
    name = labels.get("alertname", "?")
    routing = " ".join(f"{k}={v}" for k, v in sorted(labels.items(), key=str)
                       if k not in ("alertname", "severity") and not k.startswith("sloth_"))
    return (f"{alert.get('startsAt', '-')} {severity} {alert.get('status', '?')} {name} "
            f"{routing} receiver={receiver} path={path} :: {annotations.get('summary', '')}")


def parse_message(path: str, body: bytes) -> list[str] | None:
    """The lines to print for a webhook message, or None if `body` is not one."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("alerts"), list):
        return None
    receiver = str(message.get("receiver", "?"))
    return [format_alert(path, receiver, alert) for alert in message["alerts"]
            if isinstance(alert, dict)]


class Handler(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        lines = parse_message(self.path, self.rfile.read(length))
        if lines is None:
            print(f"alert-log: ignored a POST to {self.path} that is not an Alertmanager "
                  "webhook message", flush=True)
            self.send_error(400)
            return
        for line in lines:
            print(line, flush=True)
        Handler.received += len(lines)
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:  # a health check
        body = f"alert-log: {Handler.received} alerts received\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # no access log: alerts only
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the alerts Alertmanager delivers.")
    parser.add_argument("--listen", default="127.0.0.1:5001", metavar="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    print(f"alert-log: listening on {args.listen}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
