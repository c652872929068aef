r"""Write a replay case (``sandbox.replay``) from a real answer, in one command.

From a curl answer (``-D`` keeps the status line and headers, ``-o`` the raw body; no
``--compressed``, so a gzip body stays as it came)::

    curl -sS -D answer.headers -o answer.body -X POST \\
      -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
      -d @request.json "https://hq1.appsflyer.com/api/cohorts/v1/data/app/$APP?format=csv"
    python -m tap_appsflyer_cohort.sandbox.record cases/01-odd --app-id "$APP" \\
      --request request.json --headers answer.headers --body answer.body

Or let it make the call (the token is read from a file or ``$AF_API_TOKEN`` and never
written anywhere)::

    python -m tap_appsflyer_cohort.sandbox.record cases/01-odd --app-id "$APP" \\
      --request request.json --call https://hq1.appsflyer.com --token-file token.txt

By default the case matches calls whose body equals the whole request; ``--match
kpis,from,to`` keeps only those fields (so the same answer serves other windows too).
Then ``appsflyer-cohort-sandbox --replay cases`` (or ``running_sandbox(replay_dir=...)``)
serves it byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from tap_appsflyer_cohort.contract import API_PATH
from tap_appsflyer_cohort.sandbox.replay import BODY_FILE, META_FILE, REQUEST_FILE, load_case

#: Response headers not worth keeping: the replaying server writes its own.
UNKEPT_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "set-cookie"}
)
TOKEN_ENV = "AF_API_TOKEN"  # noqa: S105 (the variable's name, not a token)


def save_case(
    folder: Path | str,
    *,
    status: int,
    headers: dict[str, str],
    body: bytes,
    app_id: str | None = None,
    fmt: str | None = None,
    match_body: dict[str, Any] | None = None,
    delivery: str | None = None,
) -> Path:
    """Write one case folder and read it back (so a bad case fails here, not at replay)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    request: dict[str, Any] = {}
    if app_id is not None:
        request["app_id"] = app_id
    if fmt is not None:
        request["format"] = fmt
    if match_body:
        request["body"] = match_body
    kept = {k: v for k, v in headers.items() if k.lower() not in UNKEPT_HEADERS}
    meta: dict[str, Any] = {"status": status, "headers": kept}
    if delivery:
        meta["delivery"] = delivery
    (folder / REQUEST_FILE).write_text(json.dumps(request, indent=2) + "\n", encoding="utf-8")
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (folder / BODY_FILE).write_bytes(body)
    load_case(folder)
    return folder


def parse_curl_headers(text: str) -> tuple[int, dict[str, str]]:
    """The status and headers of the last response in a ``curl -D`` dump."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    if not blocks:
        raise ValueError("no response headers in the file")
    status_line, *lines = blocks[-1].strip().split("\n")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {status_line!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return int(parts[1]), headers


def call_api(
    base_url: str, app_id: str, fmt: str, request_body: dict[str, Any], token: str
) -> tuple[int, dict[str, str], bytes]:
    """Make the call and return its status, headers and raw (still encoded) body."""
    response = requests.post(
        base_url.rstrip("/") + API_PATH.format(app_id=app_id),
        params={"format": fmt},
        json=request_body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
        stream=True,
    )
    with response:
        raw = response.raw.read(decode_content=False)
        return response.status_code, dict(response.headers), raw


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m tap_appsflyer_cohort.sandbox.record``."""
    parser = argparse.ArgumentParser(
        prog="python -m tap_appsflyer_cohort.sandbox.record",
        description="Save one recorded answer as a replay case folder.",
    )
    parser.add_argument("case", type=Path, help="the case folder to write")
    parser.add_argument("--app-id", help="match calls for this app only (default: any app)")
    parser.add_argument(
        "--format", default="csv", help="the call's format; matched (default: %(default)s)"
    )
    parser.add_argument(
        "--request", type=Path, help="the request body sent, a JSON file (default: match any body)"
    )
    parser.add_argument(
        "--match",
        help="comma-separated body fields to match (default: every field of --request)",
    )
    parser.add_argument("--headers", type=Path, help="curl -D output: status and headers")
    parser.add_argument("--body", type=Path, help="curl -o output: the raw body")
    parser.add_argument("--call", metavar="BASE_URL", help="make the call to this API instead")
    parser.add_argument("--token-file", type=Path, help=f"token for --call (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--delivery", help="how to send it when replayed, e.g. chunked (default: Content-Length)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the case; exit 2 with one line when the inputs do not fit."""
    parser = build_parser()
    args = parser.parse_args(argv)
    request_body: dict[str, Any] = (
        json.loads(args.request.read_text(encoding="utf-8")) if args.request else {}
    )
    match_body = request_body
    if args.match:
        keys = [k.strip() for k in args.match.split(",") if k.strip()]
        missing = [k for k in keys if k not in request_body]
        if missing:
            parser.error(f"--match fields not in --request: {', '.join(missing)}")
        match_body = {k: request_body[k] for k in keys}
    if args.call:
        if not args.app_id:
            parser.error("--call needs --app-id")
        token = (
            args.token_file.read_text(encoding="utf-8").strip()
            if args.token_file
            else os.environ.get(TOKEN_ENV, "")
        )
        if not token:
            parser.error(f"--call needs --token-file or ${TOKEN_ENV}")
        status, headers, body = call_api(args.call, args.app_id, args.format, request_body, token)
    elif args.headers and args.body:
        status, headers = parse_curl_headers(args.headers.read_text(encoding="latin-1"))
        body = args.body.read_bytes()
    else:
        parser.error("give --headers and --body (a curl answer), or --call")
    try:
        folder = save_case(
            args.case,
            status=status,
            headers=headers,
            body=body,
            app_id=args.app_id,
            fmt=args.format,
            match_body=match_body,
            delivery=args.delivery,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"saved {folder} (status {status}, {len(body)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
