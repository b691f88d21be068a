"""Denials answered the way each AWS protocol answers them, so SDKs raise the right ClientError.

moto raises one XML `AccessDenied` for every service; a JSON service's SDK cannot parse it and
reports the bare HTTP status instead. Here the error shape follows the service's protocol:

  json       DynamoDB, Step Functions, SSM, KMS, Logs, EventBridge: 400,
             {"__type": "...#AccessDeniedException", "Message"}; SQS (query-compatible) 403
             with x-amzn-query-error "AccessDenied;Sender"
  rest-json  Lambda: 403, x-amzn-ErrorType AccessDeniedException, {"Type": "User", "Message"}
  query      STS, IAM: 403 <ErrorResponse> AccessDenied; SNS: 403 AuthorizationError
  ec2        403 <Response><Errors> UnauthorizedOperation
  rest-xml   S3: 403 <Error> AccessDenied (a HEAD request gets the status alone, as from S3)
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from xml.sax.saxutils import escape

SIGNING_TO_BOTOCORE = {"states": "stepfunctions", "monitoring": "cloudwatch", "email": "ses"}
# What each service calls a denial, where it is not AccessDenied(Exception).
DENIAL_CODES = {"sns": "AuthorizationError", "ec2": "UnauthorizedOperation"}
# Every code a denial may carry: what the tests accept as "denied", and nothing else.
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation"}
)

_protocols: dict[str, tuple[str, dict[str, Any]]] = {}


def protocol_of(signing_name: str) -> tuple[str, dict[str, Any]]:
    """(protocol, service metadata) of a service, from botocore's model of it."""
    if signing_name not in _protocols:
        try:
            import botocore.session

            model = botocore.session.get_session().get_service_model(
                SIGNING_TO_BOTOCORE.get(signing_name, signing_name)
            )
            _protocols[signing_name] = (model.protocol, dict(model.metadata))
        except Exception:  # noqa: BLE001 - a signing name botocore does not know
            _protocols[signing_name] = ("json", {})
    protocol, metadata = _protocols[signing_name]
    return ("json" if protocol not in ("json", "rest-json", "query", "ec2", "rest-xml") else protocol), metadata


def effective_protocol(service: str, requested: str | None) -> str:
    """The protocol to answer in: the caller's where a service speaks both query and JSON (an
    S3 object's own Content-Type says nothing about S3's protocol), else the service model's."""
    model = protocol_of(service)[0]
    return requested if requested in ("json", "query") and model in ("json", "query") else model


class ServiceError(Exception):
    """An error the emulator answers itself, shaped for the calling service's protocol.

    `protocol`: the one the request came in, where it differs from botocore's model of the
    service (Terraform's Go SDK speaks query to CloudWatch, botocore CBOR); None: the model's.
    """

    def __init__(
        self, service: str, code: str, message: str, *, status: int | None = None, protocol: str | None = None
    ) -> None:
        super().__init__(message)
        self.service, self.code, self.message, self.status = service, code, message, status
        self.protocol = protocol

    def response(self, *, method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
        _, metadata = protocol_of(self.service)
        protocol = effective_protocol(self.service, self.protocol)
        request_id = str(uuid.uuid4())
        headers = [("x-amzn-RequestId", request_id)]
        if protocol == "json":
            status = self.status or 400
            body = json.dumps({"__type": f"com.amazon.coral.service#{self.code}", "Message": self.message})
            headers += [
                ("Content-Type", f"application/x-amz-json-{metadata.get('jsonVersion', '1.0')}"),
                ("x-amzn-ErrorType", self.code),
            ]
            if "awsQueryCompatible" in metadata:  # SQS: the query protocol's code and status
                query_code = "AccessDenied" if self.code == "AccessDeniedException" else self.code
                headers.append(("x-amzn-query-error", f"{query_code};Sender"))
                status = self.status or 403
        elif protocol == "rest-json":
            status = self.status or 403
            body = json.dumps({"Type": "User", "Message": self.message})
            headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", self.code)]
        elif protocol == "ec2":
            status = self.status or 403
            error = f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message></Error>"
            body = f"<Response><Errors>{error}</Errors><RequestID>{request_id}</RequestID></Response>"
            headers.append(("Content-Type", "text/xml"))
        elif protocol == "rest-xml":
            status = self.status or 403
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{self.code}</Code>"
                f"<Message>{escape(self.message)}</Message><RequestId>{request_id}</RequestId>"
                f"<HostId>{request_id}</HostId></Error>"
            )
            headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        else:  # query
            status = self.status or 403
            error = f"<Type>Sender</Type><Code>{self.code}</Code><Message>{escape(self.message)}</Message>"
            body = f"<ErrorResponse><Error>{error}</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            headers.append(("Content-Type", "text/xml"))
        data = b"" if method == "HEAD" else body.encode()
        return f"{status} {_REASONS.get(status, 'Error')}", [*headers, ("Content-Length", str(len(data)))], data


_REASONS = {400: "Bad Request", 403: "Forbidden"}


class AccessDenied(ServiceError):
    """A request that no policy allows, or that one denies."""

    def __init__(
        self, service: str, *, principal: str, action: str, resource: str, why: str, protocol: str | None = None
    ) -> None:
        protocol = effective_protocol(service, protocol)
        default = "AccessDeniedException" if protocol in ("json", "rest-json") else "AccessDenied"
        code = DENIAL_CODES.get(service, default)
        shown = f'"{resource}"' if service == "s3" else resource
        message = f"User: {principal} is not authorized to perform: {action} on resource: {shown} {why}".rstrip()
        super().__init__(service, code, message, protocol=protocol)
        self.principal, self.action, self.resource = principal, action, resource


def why_denied(action: str, *, explicit: str | None) -> str:
    """AWS's explanation: which kind of policy denied, or that none allowed."""
    if explicit:
        return f"with an explicit deny in {explicit}"
    return f"because no identity-based policy allows the {action} action"


def unrecognized_client(service: str, *, signature: bool, protocol: str | None = None) -> ServiceError:
    """An unknown access key or a bad signature, as JSON services name them (query services
    keep moto's InvalidClientTokenId / SignatureDoesNotMatch)."""
    protocol = effective_protocol(service, protocol)
    if protocol in ("json", "rest-json"):
        code = "InvalidSignatureException" if signature else "UnrecognizedClientException"
        message = (
            "The request signature we calculated does not match the signature you provided."
            if signature
            else "The security token included in the request is invalid."
        )
        return ServiceError(service, code, message, status=400 if protocol == "json" else 403, protocol=protocol)
    code = "SignatureDoesNotMatch" if signature else "InvalidClientTokenId"
    return ServiceError(service, code, "The security token included in the request is invalid.", protocol=protocol)
