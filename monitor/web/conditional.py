"""Answers that caches and feed readers may keep: Cache-Control, a strong ETag over the body,
and 304 Not Modified when the client already holds that body (RFC 9110, section 13)."""

from __future__ import annotations

import hashlib

from aiohttp import web


def cached_response(request: web.Request, body: bytes, content_type: str, max_age_s: float
                    ) -> web.Response:
    """`body` with its ETag and Cache-Control; a 304 without it when If-None-Match names it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": f"max-age={max_age_s:g}", "ETag": etag}
    wanted = request.headers.get("If-None-Match", "")
    if wanted.strip() == "*" or etag in (t.strip().removeprefix("W/") for t in wanted.split(",")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})
