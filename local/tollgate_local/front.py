"""The gateway API on loopback: what API Gateway does in front of the two functions.

Read from template.yaml's GatewayApi and the gateway function's Api events: the routes, the
TOKEN authorizer on the Authorization header with its result cache (ReauthorizeEvery), and
the GatewayResponses (status, x-amzn-ErrorType header, body template), and the integration
timeout (each Api event's TimeoutInMillis, else API Gateway's 29 s): when the function has not
answered by then, the caller gets the INTEGRATION_TIMEOUT gateway response (504) while the
function goes on running, as in AWS (and, as one warm container, keeps the next request waiting
until it is done). Each request becomes the proxy event API Gateway would send
(tollgate_local.apigw), and the functions run in this process. Not emulated: the stage's
throttling (rate/burst), request validation of the body size limit (10 MB), and TLS.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from tollgate.budget import API_GATEWAY_DEFAULT_INTEGRATION_TIMEOUT_MS

from tollgate_local.apigw import UNAUTHORIZED, authorizer_context, proxy_event, token_authorizer_event
from tollgate_local.runtime import LocalFunction
from tollgate_local.usage_plans import UsagePlanThrottle, Verdict

log = logging.getLogger("tollgate.local.api")


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # e.g. /model/{profile}/converse
    pattern: re.Pattern[str]
    #: How long API Gateway waits for the integration (the event's TimeoutInMillis, else AWS's default).
    timeout_ms: int = API_GATEWAY_DEFAULT_INTEGRATION_TIMEOUT_MS

    @classmethod
    def of(cls, method: str, resource: str, timeout_ms: int = API_GATEWAY_DEFAULT_INTEGRATION_TIMEOUT_MS) -> Route:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(resource))
        return cls(method.upper(), resource, re.compile(f"^{regex}$"), timeout_ms)


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    headers: dict[str, str]
    template: str


@dataclass(frozen=True)
class ApiSettings:
    """The API's behaviour as template.yaml declares it."""

    stage: str
    routes: tuple[Route, ...]
    identity_header: str
    cache_seconds: int
    responses: dict[str, GatewayResponse]

    @classmethod
    def from_template(cls, sam: Mapping[str, Any], parameters: Mapping[str, str]) -> ApiSettings:
        resources = sam["Resources"]
        (api_name,) = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Api"]
        api = resources[api_name]["Properties"]
        auth = api["Auth"]["Authorizers"][api["Auth"]["DefaultAuthorizer"]]
        routes = []
        for resource in resources.values():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event["Type"] == "Api" and event["Properties"].get("RestApiId", {}).get("Ref") == api_name:
                    spec = event["Properties"]
                    timeout = int(
                        _param(spec.get("TimeoutInMillis", API_GATEWAY_DEFAULT_INTEGRATION_TIMEOUT_MS), parameters)
                    )
                    routes.append(Route.of(spec["Method"], spec["Path"], timeout))
        responses = {}
        for kind, spec in api.get("GatewayResponses", {}).items():
            headers = {k: v.strip("'") for k, v in spec.get("ResponseParameters", {}).get("Headers", {}).items()}
            template = spec.get("ResponseTemplates", {}).get("application/json", "")
            responses[kind] = GatewayResponse(spec.get("StatusCode"), headers, template)
        return cls(
            stage=_param(api["StageName"], parameters),
            routes=tuple(routes),
            identity_header=auth["Identity"]["Header"],
            cache_seconds=int(_param(auth["Identity"].get("ReauthorizeEvery", 300), parameters)),
            responses=responses,
        )


def _param(value: Any, parameters: Mapping[str, str]) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(parameters[value["Ref"]])
    return str(value)


class LocalApi:
    """Routing, authorization (with its cache) and gateway responses; transport-free, so tests can call it."""

    def __init__(
        self,
        settings: ApiSettings,
        authorizer: LocalFunction,
        gateway: LocalFunction,
        *,
        region: str,
        api_id: str = "tollgatelocal",
        clock: Callable[[], float] = time.monotonic,
        integration_timeout_seconds: float | None = None,
        usage_plans: UsagePlanThrottle | None = None,
    ):
        """``integration_timeout_seconds`` replaces every route's integration timeout: for tests only
        (API Gateway's limit is not a setting of the local stack)."""
        self.settings = settings
        self._integration_timeout = integration_timeout_seconds
        self._authorizer = authorizer
        self._gateway = gateway
        self._region = region
        self._api_id = api_id
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        #: ApiKeyRequired methods: the usage plans' throttling (None: the API requires no key).
        self._usage_plans = usage_plans

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        route, parameters = self._route(method, path)
        context = {"httpMethod": method, "path": path, "authorizer.reason": "", "error.messageString": ""}
        if route is None:
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN", 404, "Missing Authentication Token", context)
        token = next((v for k, v in headers.items() if k.lower() == self.settings.identity_header.lower()), None)
        if not token:
            return self._gateway_response("UNAUTHORIZED", 401, "Unauthorized", context)
        try:
            policy = self._authorize(token, method, path)
            if policy is None:
                return self._gateway_response("UNAUTHORIZED", 401, "Unauthorized", context)
            if not _allows(policy, method, path):
                context["authorizer.reason"] = str(policy.get("context", {}).get("reason", "access denied"))
                message = "User is not authorized to access this resource"
                return self._gateway_response("ACCESS_DENIED", 403, message, context)
            authorizer = authorizer_context(policy)
            verdict = self._usage_plans.admit(policy.get("usageIdentifierKey")) if self._usage_plans else None
        except Exception:
            # The authorizer raised (other than "Unauthorized") or answered with a malformed policy:
            # API Gateway answers 500 AuthorizerConfigurationException with a null message, which
            # this template's DEFAULT_5XX turns into InternalServerException.
            log.exception("%s %s: the authorizer failed", method, path)
            return self._gateway_response("AUTHORIZER_CONFIGURATION_ERROR", 500, None, context)
        if verdict is Verdict.FORBIDDEN:
            return self._gateway_response("INVALID_API_KEY", 403, "Forbidden", context)
        if verdict is Verdict.THROTTLED:
            return self._gateway_response("THROTTLED", 429, "Too Many Requests", context)
        event = proxy_event(
            method=method,
            path=path,
            resource=route.resource,
            path_parameters=parameters or None,
            headers=dict(headers),
            body=body.decode("utf-8") if body else None,
            authorizer=authorizer,
            query=query,
            stage=self.settings.stage,
            api_id=self._api_id,
            region=self._region,
        )
        timeout = route.timeout_ms / 1000 if self._integration_timeout is None else self._integration_timeout
        try:
            result = self._integrate(event, timeout)
        except _IntegrationTimedOut:
            log.warning("%s %s: no answer from the function within %g s (it goes on running)", method, path, timeout)
            return self._gateway_response("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out", context)
        except Exception:
            return self._gateway_response("DEFAULT_5XX", 502, "Internal server error", context)
        return _proxy_result(result)

    def _integrate(self, event: dict[str, Any], timeout: float) -> Any:
        """The gateway function's result, waited for at most ``timeout`` seconds (then it runs on, unwaited)."""
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = self._gateway.invoke(event)
            except Exception as error:
                outcome["error"] = error
            finally:
                done.set()

        threading.Thread(target=run, name="tollgate-integration", daemon=True).start()
        if not done.wait(timeout):
            raise _IntegrationTimedOut
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def _route(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.settings.routes:
            if route.method == method and (match := route.pattern.match(path)):
                return route, match.groupdict()
        return None, {}

    def _authorize(self, token: str, method: str, path: str) -> dict[str, Any] | None:
        """The authorizer's policy for the token (cached per token for ReauthorizeEvery), or None for 401."""
        now = self._clock()
        with self._cache_lock:
            cached = self._cache.get(token)
            if cached and cached[0] > now:
                return cached[1]
        event = token_authorizer_event(
            token=token, method=method, path=path, stage=self.settings.stage, api_id=self._api_id, region=self._region
        )
        try:
            policy: dict[str, Any] = self._authorizer.invoke(event)
        except Exception as error:
            if str(error) == UNAUTHORIZED:  # the documented way for an authorizer to answer 401
                return None
            raise
        if self.settings.cache_seconds > 0:
            with self._cache_lock:
                self._cache[token] = (now + self.settings.cache_seconds, policy)
        return policy

    def _gateway_response(
        self, kind: str, default_status: int, default_message: str | None, context: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        spec = self.settings.responses.get(kind)
        family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        fallback = self.settings.responses.get(family)
        context["error.messageString"] = json.dumps(default_message)
        status = (spec.status if spec and spec.status else None) or default_status
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        template = ""
        for source in (fallback, spec):  # the specific response overrides the default family's
            if source is not None:
                headers.update(source.headers)
                template = source.template or template
        if not template:
            template = '{"message":$context.error.messageString}'
        body = re.sub(r"\$context\.([\w.]+)", lambda m: context.get(m[1], ""), template)
        return status, headers, body.encode("utf-8")


class _IntegrationTimedOut(Exception):
    """The integration did not answer within its timeout."""


def _allows(policy: Mapping[str, Any], method: str, path: str) -> bool:
    """Whether the policy's statements allow invoking this method and path (Deny wins)."""
    allowed = False
    for statement in policy.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        target = f"{method}{path}"
        hit = any(_arn_matches(r, target) for r in resources)
        if hit and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (hit and statement.get("Effect") == "Allow")
    return allowed


def _arn_matches(arn: str, method_and_path: str) -> bool:
    # arn:aws:execute-api:region:account:api/stage/METHOD/path ; '*' matches anything
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return False
    api_stage_method_path = parts[5].split("/", 2)
    if len(api_stage_method_path) < 3:
        return False
    wanted = api_stage_method_path[2]
    regex = "^" + ".*".join(re.escape(piece) for piece in wanted.split("*")) + "$"
    return re.match(regex, method_and_path) is not None


def _proxy_result(result: Any) -> tuple[int, dict[str, str], bytes]:
    """A Lambda proxy integration result as API Gateway turns it into an HTTP response."""
    if not isinstance(result, Mapping) or "statusCode" not in result:
        return 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(result["statusCode"]), headers, raw


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
    # held the body back ~40 ms on every request (measured by `make bench`: p50 55 ms -> 8 ms).
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, raw_query = self.path.partition("?")
        # queryStringParameters as API Gateway fills it: the last value of a repeated name
        query = dict(parse_qsl(raw_query, keep_blank_values=True)) or None
        extra = self.server.extra_routes.get(path)
        if extra is not None and self.command == "GET":
            status, headers, payload = extra()
        else:
            status, headers, payload = self.server.api.handle(
                self.command, path, dict(self.headers.items()), body, query
            )
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog (5) resets connections a burst of clients opens at once;
    # API Gateway takes them all.
    request_queue_size = 128
    api: LocalApi
    extra_routes: dict[str, Callable[[], tuple[int, dict[str, str], bytes]]]


class ApiServer:
    """LocalApi over HTTP on host:port, in a daemon thread; extra GET routes (e.g. the dashboard)."""

    def __init__(
        self,
        api: LocalApi,
        host: str = "127.0.0.1",
        port: int = 3000,
        extra_routes: Mapping[str, Callable[[], tuple[int, dict[str, str], bytes]]] | None = None,
    ):
        self._server = _Server((host, port), _Handler)
        self._server.api = api
        self._server.extra_routes = dict(extra_routes or {})
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="tollgate-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def html(render: Callable[[], str]) -> Callable[[], tuple[int, dict[str, str], bytes]]:
    def route() -> tuple[int, dict[str, str], bytes]:
        try:
            return HTTPStatus.OK, {"Content-Type": "text/html; charset=utf-8"}, render().encode("utf-8")
        except Exception as error:  # the page must say why it cannot be drawn
            log.exception("page failed")
            return 500, {"Content-Type": "text/plain; charset=utf-8"}, f"cannot render: {error}\n".encode()

    return route
