"""POST /v1/submissions: check the envelope, append to the raw log, answer 202 once it is durable.

Kept as a bare ASGI app on purpose: it is the hot path, benchmarked against a no-op app, and every
layer here costs requests per second. Questionnaire-level judging happens after the 202.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import pydantic
from prometheus_client import CONTENT_TYPE_LATEST

from core.access import METRICS_RULE, Authenticator, Denied, FailedAuthLimiter, check_bearer
from core.judge import DEVICE_HASH_PREFIX
from core.ports import LogUnavailableError, RawLog
from core.privacy import holds_personal_numbers, keyed_hash, mask_free_text, network_prefix
from ingest import metrics
from ingest.asgi import (
    ASGIApp,
    BodyTooLargeError,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_json,
)
from ingest.cors import CorsPolicy, vary_only, with_allow_origin
from ingest.rate_limit import TokenBuckets
from schemas.envelope import (
    MAX_BODY_BYTES,
    SubmissionEnvelope,
    envelope_error_detail,
    envelope_field_errors,
)
from schemas.settings import Settings
from telemetry import metrics_server

SUBMISSIONS_PATH = "/v1/submissions"
_ENVELOPE = SubmissionEnvelope.__pydantic_validator__


class Collector:
    """The collector edge; `known_campaigns` is read per request, so registry updates apply live."""

    def __init__(
        self,
        log: RawLog,
        known_campaigns: Callable[[], Any],
        *,
        hash_key: str,
        fallback: ASGIApp | None = None,
        ready: Callable[[], bool] | None = None,
        on_received: Callable[[str, str], None] | None = None,
        rate_limit_per_ip: float = 0.0,
        rate_limit_per_link: float = 0.0,
        max_in_flight: int = 4096,
        trusted_proxies: list[str] | None = None,
        cors_origins: list[str] | None = None,
        authenticator: Authenticator | None = None,
        auth_failures_per_minute: int = 30,
    ) -> None:
        self.log = log
        self.known_campaigns = known_campaigns
        self.hash_key = hash_key
        self.fallback = fallback
        self.ready = ready or log.healthy
        self.on_received = on_received
        self.ip_buckets = TokenBuckets(rate_limit_per_ip) if rate_limit_per_ip > 0 else None
        self.link_buckets = TokenBuckets(rate_limit_per_link) if rate_limit_per_link > 0 else None
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.trusted_proxies = set(trusted_proxies or ())
        # None unless origins are configured: the default hot path does no CORS work at all.
        self.cors = CorsPolicy(cors_origins) if cors_origins else None
        # Who may read /metrics when the collector serves its own routes (CONTRACT §7): a
        # monitor or admin token; without an authenticator nobody.
        self.authenticator = authenticator
        self.auth_failures = FailedAuthLimiter(limit=auth_failures_per_minute)
        # Set when a stop begins (runtime/distributed/serving.py): not ready, still serving.
        self.draining = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        log: RawLog,
        known_campaigns: Callable[[], Any],
        *,
        fallback: ASGIApp | None = None,
        ready: Callable[[], bool] | None = None,
        on_received: Callable[[str, str], None] | None = None,
        authenticator: Authenticator | None = None,
    ) -> Collector:
        """The one wiring of the collector from `Settings`, for every runtime: a setting added
        here reaches `serve` and the distributed collector alike (they once drifted: CORS)."""
        return cls(
            log, known_campaigns, hash_key=settings.hash_key, fallback=fallback, ready=ready,
            on_received=on_received,
            rate_limit_per_ip=settings.rate_limit_per_ip,
            rate_limit_per_link=settings.rate_limit_per_link,
            max_in_flight=settings.max_in_flight,
            trusted_proxies=settings.trusted_proxies,
            cors_origins=settings.cors_origins,
            authenticator=authenticator,
            auth_failures_per_minute=settings.auth_failures_per_minute,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == SUBMISSIONS_PATH:
                await self._submission(scope, receive, send)
                return
            if self.fallback is None:
                await self._own_routes(path, scope, receive, send)
                return
        if self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)

    async def _own_routes(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        if path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            ok = not self.draining and self.ready()
            await send_json(send, 200 if ok else 503, {"status": "ready" if ok else "not ready"})
        elif path == "/metrics":
            refusal = self._metrics_refusal(scope)
            if refusal is not None:
                status, detail, headers = refusal
                await send_json(send, status, {"detail": detail}, headers)
                return
            body = metrics_server.exposition(ready=self.ready)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
        else:
            await send_json(send, 404, {"detail": "not found"})

    def _metrics_refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        """None when the caller may read /metrics; else (status, detail, headers)."""
        raw = header(scope, b"authorization")
        authorization = raw.decode("latin-1") if raw is not None else None
        client = (scope.get("client") or ("?", 0))[0]
        try:
            if self.authenticator is None:
                raise Denied(401, "metrics need a monitor or admin token")
            check_bearer(self.authenticator, self.auth_failures, METRICS_RULE, authorization,
                         client, time.monotonic())
        except Denied as exc:
            headers = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
            if exc.retry_after:
                headers.append((b"retry-after", str(exc.retry_after).encode()))
            return exc.status, exc.detail, headers
        return None

    async def _submission(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if self.cors is not None:
            origin = self.cors.allowed_origin(scope)
            if origin is None:
                send = vary_only(send)
            elif self.cors.is_preflight(scope):
                await self.cors.send_preflight(send, origin)
                return
            else:
                send = with_allow_origin(send, origin)
        status = await self._handle(scope, receive, send)
        metrics.count_response(status)
        metrics.LATENCY.observe(time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> int:
        if scope["method"] != "POST":
            await send_json(send, 405, {"detail": "use POST"}, [(b"allow", b"POST")])
            return 405
        ctype = header(scope, b"content-type") or b""
        if ctype.split(b";", 1)[0].strip().lower() != b"application/json":
            await send_json(send, 415, {"detail": "Content-Type must be application/json"})
            return 415
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await send_json(send, 413, {"detail": f"body larger than {MAX_BODY_BYTES} bytes"})
            return 413
        try:
            body = await read_body(receive, MAX_BODY_BYTES)
        except BodyTooLargeError:
            await send_json(send, 413, {"detail": f"body larger than {MAX_BODY_BYTES} bytes"})
            return 413
        except ConnectionError:
            return 499

        try:
            envelope: SubmissionEnvelope = _ENVELOPE.validate_json(body)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            if any(e["type"] == "json_invalid" for e in errors):
                await send_json(send, 400, {"detail": "body is not valid UTF-8 JSON"})
                return 400
            if any(e["type"] == "model_type" and not e["loc"] for e in errors):
                await send_json(send, 422, {"detail": "body must be a JSON object"})
                return 422
            await send_json(
                send,
                422,
                {"detail": envelope_error_detail(errors), "errors": envelope_field_errors(errors)},
            )
            return 422
        if envelope.campaign not in self.known_campaigns():
            await send_json(
                send,
                422,
                {
                    "detail": "envelope invalid",
                    "errors": [
                        {
                            "loc": ["campaign"],
                            "type": "unknown_campaign",
                            "msg": f"unknown campaign {envelope.campaign!r}",
                        }
                    ],
                },
            )
            return 422

        client = self._client_address(scope)
        limited = self._rate_limited(client, envelope.link_code)
        if limited:
            await send_json(
                send,
                429,
                {"detail": "rate limited, retry later"},
                [(b"retry-after", str(max(1, round(limited))).encode())],
            )
            return 429
        if self.in_flight >= self.max_in_flight:
            await send_json(
                send,
                503,
                {"detail": "overloaded, nothing stored; retry with the same submission_id"},
                [(b"retry-after", b"1")],
            )
            return 503

        body = self._mask_personal_numbers(body, envelope)
        if envelope.device_id:
            body = self._hash_device_id(body, envelope.device_id)
        record = b"".join(
            (
                b'{"v":1,"kind":"submission.received","received_at":"',
                dt.datetime.now(dt.UTC).isoformat().encode(),
                b'","client":"',
                keyed_hash(self.hash_key, client).encode(),
                b'","network":"',
                self._network_hash(client),
                b'","body":',
                body,
                b"}",
            )
        )
        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        appended = time.perf_counter()
        try:
            await self.log.append(envelope.submission_id.encode(), record)
        except LogUnavailableError as exc:
            await send_json(
                send,
                503,
                {"detail": f"{exc.reason}, nothing stored; retry with the same submission_id"},
                [(b"retry-after", b"1")],
            )
            return 503
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()
        metrics.APPEND_LATENCY.observe(time.perf_counter() - appended)
        metrics.PAYLOAD_BYTES.inc(len(body))
        if self.on_received is not None:
            self.on_received(envelope.campaign, envelope.submission_id)
        await send_json(
            send,
            202,
            b'{"submission_id":"' + envelope.submission_id.encode() + b'","status":"received"}',
        )
        return 202

    def _hash_device_id(self, body: bytes, device_id: str) -> bytes:
        """The body with `device_id` replaced by "h:" + its keyed hash, so no raw device id is
        ever written to the log. Deterministic, so identical resends keep identical fingerprints;
        judging takes an "h:" value as the hash it already is. The value is replaced in place
        where that is unambiguous (nearly always); otherwise the document is re-encoded, and its
        numbers survive that as the judge would have parsed them anyway."""
        hashed = DEVICE_HASH_PREFIX + keyed_hash(self.hash_key, device_id)
        spliced = _splice_device_id(body, device_id, hashed)
        if spliced is not None:
            return spliced
        doc = json.loads(body)
        doc["device_id"] = hashed
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate escape: keep it escaped, still valid JSON
            return json.dumps(doc, separators=(",", ":")).encode()

    def _mask_personal_numbers(self, body: bytes, envelope: SubmissionEnvelope) -> bytes:
        """The body with phone and ID-card numbers masked in its free text (core.privacy), so
        none is ever written to the log. Deterministic, so an identical resend is logged
        identically and keeps its fingerprint; only a body holding such a number is re-encoded."""
        r = envelope.respondent
        screened = (envelope.opinion, envelope.answers, r.province, r.city, r.age_group,
                    r.model_extra, envelope.model_extra)
        if not holds_personal_numbers(screened):
            return body
        doc = mask_free_text(json.loads(body))
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate escape: keep it escaped, still valid JSON
            return json.dumps(doc, separators=(",", ":")).encode()

    def _network_hash(self, client: str) -> bytes:
        """Keyed hash of the client's /24 (IPv4) or /48 (IPv6) network, for anomaly detection
        (clusters of sheets from one network); like the address, never stored in clear."""
        return keyed_hash(self.hash_key, network_prefix(client)).encode()

    def _client_address(self, scope: Scope) -> str:
        peer = scope.get("client")
        host = peer[0] if peer else ""
        if host in self.trusted_proxies:
            forwarded = header(scope, b"x-forwarded-for")
            if forwarded:
                # The right-most address not added by one of our own proxies is the client.
                hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
                for hop in reversed(hops):
                    if hop not in self.trusted_proxies:
                        return hop
        return str(host)

    def _rate_limited(self, client: str, link_code: str) -> float:
        wait = 0.0
        if self.ip_buckets is not None:
            wait = self.ip_buckets.take(client)
        if not wait and self.link_buckets is not None:
            wait = self.link_buckets.take(link_code)
        return wait


_DEVICE_KEY = b'"device_id"'
_JSON_SPACE = b" \t\r\n"


def _splice_device_id(body: bytes, device_id: str, hashed: str) -> bytes | None:
    """The body with the device id's bytes replaced by `hashed` in place (a tenth of the cost of
    re-encoding the document), or None where that is not certain to hit the top-level value.

    Certain when `"device_id"` occurs exactly once and the body has no \\u escape: the envelope
    has a top-level device_id (the caller checked), whose key can then only be spelled that
    way; any other occurrence (a nested key, a quote inside a string) makes two. The value must
    be the id's own bytes, unescaped, closed by a quote."""
    at = body.find(_DEVICE_KEY)
    if at < 0 or body.find(_DEVICE_KEY, at + 1) >= 0 or b"\\u" in body:
        return None
    raw = device_id.encode()
    if b"\\" in raw or b'"' in raw:
        return None
    i = at + len(_DEVICE_KEY)
    n = len(body)
    while i < n and body[i] in _JSON_SPACE:
        i += 1
    if i >= n or body[i] != 0x3A:  # ':'
        return None
    i += 1
    while i < n and body[i] in _JSON_SPACE:
        i += 1
    start = i + 1
    end = start + len(raw)
    if i >= n or body[i] != 0x22 or body[start:end] != raw or body[end : end + 1] != b'"':
        return None
    return b"".join((body[:start], hashed.encode(), body[end:]))


async def _lifespan_noop(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
