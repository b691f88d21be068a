"""IAM enforcement in the local emulator: every request is checked against its caller's policies.

    iam.install()                 from local.emulator.apply_patches(); on unless PIPELINE_LOCAL_IAM=0
    iam.credentials_for(fn)       AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN of a session of a moto
                                  LambdaFunction's role, assumed as lambda.amazonaws.com
    iam.assume_for_service(...)   the same for any role and service (the denial suite's way in)

Who is who:
  * `test`/`test` (Terraform, the CLI, the tests) is the deployer: an administrator user
    created inside moto (sessions.py).
  * A Lambda invocation runs with a session of the function's own role, assumed through STS
    only if the role's trust policy lets lambda.amazonaws.com assume it for this account and
    function (aws:SourceAccount, aws:SourceArn); the session is cached until near expiry.
  * The Step Functions interpreter calls Lambda, SNS, S3, DynamoDB, Step Functions... back
    through the emulator with a session of the state machine's role (states.amazonaws.com),
    instead of moto's fixed key "ak" (moto/stepfunctions/parser/asl/utils/boto_client.py).

How a request is decided (replacing moto's ActionAuthenticatorMixin check):
  the signature is verified (moto), the caller's identity policies are collected (moto), the
  request is turned into the (action, resource) pairs AWS evaluates (resources.py), each pair
  is evaluated by AWS's rules (policy.py): an explicit Deny wins, else an Allow allows, else
  denied. sts:AssumeRole also needs the role's trust policy to allow the caller; KMS key use
  behind SSE-KMS and encrypted topics also needs the key policy to allow it. A denial is
  answered in the calling protocol's own error shape (errors.py).

Extra endpoints (through local.emulator's /_pipeline/ handler):
  GET  /_pipeline/iam               -> {"enforced": bool, "deployer": user ARN}
  POST /_pipeline/iam/assume-role   {"roleArn", "service", "sourceArn"?} -> credentials, or 403
  GET  /_pipeline/iam/usage         -> {role: {"policy/statement": ["action resource-pattern", ...]}}
                                       what each role's statements allowed so far (also written
                                       to <state dir>/iam-usage.json when the emulator exits)
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
from typing import Any

from local.iam.errors import (
    ACCESS_DENIED_CODES,
    AccessDenied,
    ServiceError,
    unrecognized_client,
    why_denied,
)
from local.iam.policy import (
    Decision,
    Effect,
    Policy,
    Principal,
    Request,
    evaluate,
    matched_resource,
    names_principal_explicitly,
)
from local.iam.resources import Call, Check, checks_for
from local.iam.sessions import (
    DEPLOYER_ACCESS_KEY,
    DEPLOYER_SECRET_KEY,
    RoleNotAssumable,
    Session,
    ensure_deployer,
    identity_policies,
    service_session,
    trust_allows,
)

__all__ = [
    "ACCESS_DENIED_CODES",
    "DEPLOYER_ACCESS_KEY",
    "DEPLOYER_SECRET_KEY",
    "AccessDenied",
    "RoleNotAssumable",
    "ServiceError",
    "assume_for_service",
    "credentials_for",
    "enforced",
    "install",
]

LOG = logging.getLogger("local.iam")
SWITCH = "PIPELINE_LOCAL_IAM"
LAMBDA_SERVICE = "lambda.amazonaws.com"
STATES_SERVICE = "states.amazonaws.com"
_state = {"installed": False, "enforced": False}
_usage_lock = threading.Lock()
_usage: dict[str, dict[str, set[str]]] = {}


def enforced() -> bool:
    return _state["enforced"]


def enabled_by_environment() -> bool:
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def install(*, enforce: bool | None = None) -> None:
    """Patch moto (once) and switch enforcement on, unless `enforce` or $PIPELINE_LOCAL_IAM says off."""
    from moto import settings

    if not _state["installed"]:
        _patch_authorization()
        _patch_dispatcher()
        _patch_stepfunctions_interpreter()
        atexit.register(_write_usage)
        _state["installed"] = True
    _state["enforced"] = enabled_by_environment() if enforce is None else enforce
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if _state["enforced"] else float("inf")
    ensure_deployer()
    LOG.info("IAM enforcement %s", "on" if _state["enforced"] else f"off ({SWITCH}=0)")


def credentials_for(fn: Any) -> dict[str, str]:
    """Environment credentials of a session of moto LambdaFunction `fn`'s execution role
    ({} with enforcement off: the handler keeps the deployer's key)."""
    if not enforced():
        return {}
    session = assume_for_service(
        fn.role, service=LAMBDA_SERVICE, source_arn=fn.function_arn, session_name=fn.function_name
    )
    return session.environment()


def assume_for_service(
    role_arn: str, *, service: str, source_arn: str | None = None, session_name: str | None = None
) -> Session:
    try:
        return service_session(role_arn, service=service, source_arn=source_arn, session_name=session_name)
    except RoleNotAssumable as exc:
        if service == LAMBDA_SERVICE:  # what Lambda answers when it cannot assume the role
            raise ServiceError(
                "lambda",
                "InvalidParameterValueException",
                f"The role defined for the function cannot be assumed by Lambda. ({exc})",
                status=400,
            ) from exc
        raise


# ---------------------------------------------------------------- the check
def _patch_authorization() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def _authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if not enforced():
            return original(self, iam_request_cls, resource)
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return None
        return _authorize(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action


def _authorize(response: Any, iam_request_cls: type, resource: str) -> None:
    from moto.core.exceptions import InvalidClientTokenIdError, SignatureDoesNotMatchError
    from moto.iam.access_control import S3IAMRequest

    operation = response._get_action()
    operation = operation[0] if isinstance(operation, list) else operation
    service = _signing_name(response.headers)
    if "Authorization" not in response.headers:
        raise AccessDenied(
            service or "s3",
            principal="anonymous",
            action=f"{service}:{operation}",
            resource=resource,
            why="because no identity-based policy allows anonymous requests",
        )
    is_s3 = iam_request_cls is S3IAMRequest
    path = response.raw_path + (("?" + response.uri.split("?", 1)[1]) if "?" in response.uri else "")
    try:
        iam_request = iam_request_cls(
            account_id=response.current_account,
            method=response.method,
            path=path,
            # moto signs `body or data` again (data: a query request's form). A bodiless request
            # to Lambda has its headers in moto's `data`, so its signature never matched. S3 signs
            # the x-amz-content-sha256 header and reads the bucket name from `data`.
            data=response.data if is_s3 or _is_form(response.headers) else {},
            body=response.raw_body,
            headers=response.headers,
            action=operation,
        )
        iam_request.check_signature()
    except (InvalidClientTokenIdError, SignatureDoesNotMatchError) as exc:
        if is_s3:
            raise
        signature = isinstance(exc, SignatureDoesNotMatchError)
        raise unrecognized_client(service, signature=signature, protocol=_request_protocol(response.headers)) from exc
    if f"{service}:{operation}" == "sts:GetCallerIdentity":  # needs no permission, on AWS too
        return
    access_key = iam_request._access_key
    principal = Principal(arn=access_key.arn)
    policies = identity_policies(access_key)
    call = Call(
        response=response,
        service=service,
        operation=operation,
        resource=resource,
        account=response.current_account,
        region=iam_request._region,
    )
    context = _context(principal, iam_request._region, response)
    if service == "s3":
        # S3's listing condition key: a grant of s3:ListBucket may be limited to a prefix.
        prefix = (getattr(response, "querystring", None) or {}).get("prefix")
        if prefix:
            context["s3:prefix"] = prefix[0]
    if service == "monitoring" and (namespace := call.param("Namespace")):
        # CloudWatch's condition key limiting PutMetricData to namespaces.
        context["cloudwatch:namespace"] = namespace
    protocol = _request_protocol(response.headers)
    for check in checks_for(call):
        _decide(service, principal, policies, check, context, protocol)


def _is_form(headers: Any) -> bool:
    return "x-www-form-urlencoded" in (headers.get("Content-Type") or "")


def _request_protocol(headers: Any) -> str | None:
    """The protocol the caller speaks, where it can differ from botocore's model of the service
    (Terraform's Go SDK sends CloudWatch the query protocol, botocore CBOR)."""
    if _is_form(headers):
        return "query"
    if headers.get("X-Amz-Target") or "json" in (headers.get("Content-Type") or ""):
        return "json"
    return None


def _signing_name(headers: Any) -> str:
    auth = headers.get("Authorization", "")  # AWS4-HMAC-SHA256 Credential=AK/date/region/SERVICE/aws4_request
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) > 3 else ""


def _context(principal: Principal, region: str, response: Any) -> dict[str, Any]:
    now = time.time()
    context: dict[str, Any] = {
        "aws:PrincipalArn": principal.role_arn or principal.arn,
        "aws:PrincipalAccount": principal.account,
        "aws:RequestedRegion": region,
        # The emulator's plain HTTP on loopback stands in for AWS's TLS endpoints.
        "aws:SecureTransport": "true",
        "aws:CurrentTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "aws:EpochTime": str(int(now)),
    }
    external_id = Call(response, "sts", "", "*", "", region).param("ExternalId")
    if external_id:
        context["sts:ExternalId"] = external_id
    return context


def _decide(
    service: str, principal: Principal, policies: list[Policy], check: Check, context: dict, protocol: str | None
) -> None:
    request = Request(check.action, check.resource, principal, context)
    identity = evaluate(policies, request)
    denied_by = "an identity-based policy" if identity.effect is Effect.DENY else None
    allowed = identity.allowed
    extra: list[Policy] = []
    if check.action.lower() == "sts:assumerole":
        try:
            trusted, named = trust_allows(check.resource, principal, context)
        except RoleNotAssumable:
            trusted = named = False
        allowed = not denied_by and trusted and (allowed or named)
    elif check.resource_policy is not None:  # a KMS key policy
        extra = [check.resource_policy]
        by_key = evaluate(extra, request, resource_policy=True)
        if by_key.effect is Effect.DENY:
            denied_by = "a resource-based policy"
        named = names_principal_explicitly(extra, request)
        allowed = not denied_by and by_key.allowed and (identity.allowed or named)
    if denied_by or not allowed:
        why = why_denied(check.action, explicit=denied_by)
        if check.action.lower() == "sts:assumerole" and not denied_by and identity.allowed:
            why = ""  # the role's trust policy refused: AWS says no more
        elif check.resource_policy is not None and not denied_by and identity.allowed:
            why = f"because no resource-based policy allows the {check.action} action"
        LOG.info("denied: %s %s on %s", principal.arn, check.action, check.resource)
        raise AccessDenied(
            service,
            principal=principal.arn or "anonymous",
            action=check.action,
            resource=check.resource,
            why=why,
            protocol=protocol,
        )
    if principal.role_arn and identity.allowed:
        _record(principal, identity, check.action, matched_resource(policies, identity, check.resource))


def _record(principal: Principal, decision: Decision, action: str, resource: str) -> None:
    role = (principal.role_arn or "").rsplit("/", 1)[-1]
    with _usage_lock:
        _usage.setdefault(role, {}).setdefault(f"{decision.policy}/{decision.statement}", set()).add(
            f"{action} {resource}"
        )


def usage() -> dict[str, dict[str, list[str]]]:
    with _usage_lock:
        return {role: {k: sorted(v) for k, v in stmts.items()} for role, stmts in sorted(_usage.items())}


def _write_usage() -> None:
    """At exit: <state dir>/iam-usage.json, what each role's statements allowed (statements never
    used by a whole test run are candidates for removal)."""
    from local import lambda_runner

    if _usage:
        path = lambda_runner.CONFIG.state_dir / "iam-usage.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(usage(), indent=1, sort_keys=True))


# ---------------------------------------------------------------- answering denials
def _patch_dispatcher() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    def __call__(self: Any, environ: dict, start_response: Any) -> Any:
        try:
            return original(self, environ, start_response)
        except ServiceError as error:  # moto's Flask apps run with debug=True: errors propagate
            if not error.service:
                error.service = _signing_name({"Authorization": environ.get("HTTP_AUTHORIZATION", "")})
            status, headers, body = error.response(method=environ.get("REQUEST_METHOD", "POST"))
            start_response(status, headers)
            return [body]

    DomainDispatcherApplication.__call__ = __call__


def endpoint(method: str, path: str, body: bytes) -> tuple[str, Any]:
    """The /_pipeline/iam endpoints: (HTTP status line, JSON-able result)."""
    if path == "/_pipeline/iam" and method == "GET":
        from local.iam.sessions import DEFAULT_ACCOUNT, DEPLOYER_USER

        return "200 OK", {"enforced": enforced(), "deployer": f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/{DEPLOYER_USER}"}
    if path == "/_pipeline/iam/usage" and method == "GET":
        return "200 OK", usage()
    if path == "/_pipeline/iam/assume-role" and method == "POST":
        try:
            request = json.loads(body or b"{}")
            session = service_session(
                request["roleArn"],
                service=request["service"],
                source_arn=request.get("sourceArn"),
                session_name=request.get("sessionName"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return "400 Bad Request", {"message": f"bad assume-role request: {exc!r}"}
        except RoleNotAssumable as exc:
            return "403 Forbidden", {"code": "AccessDenied", "message": str(exc)}
        return "200 OK", session.as_json()
    return "404 Not Found", {"message": f"no such endpoint: {method} {path}"}


# ---------------------------------------------------------------- Step Functions
def _patch_stepfunctions_interpreter() -> None:
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.utils import boto_client as module

    original = module.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        if not enforced() or not role_arn:
            return original(region, service, state_credentials)
        session = service_session(role_arn, service=STATES_SERVICE, session_name="states")
        kwargs = {} if botocore_stubber.enabled else {"endpoint_url": f"http://localhost:{moto_server_port()}"}
        timeout = module.TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
        return boto3.client(
            service_name=service,
            region_name=region,
            aws_access_key_id=session.access_key_id,
            aws_secret_access_key=session.secret_access_key,
            aws_session_token=session.session_token,
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=timeout,
                read_timeout=timeout,
            ),
            **kwargs,
        )

    module.boto_client_for = boto_client_for
    # The interpreter's modules import the function by name: rebind those loaded already.
    for name, loaded in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions") and getattr(loaded, "boto_client_for", None) is original:
            loaded.boto_client_for = boto_client_for
