"""What one request asks permission for: IAM action names and resource ARNs, per service.

moto checks the operation name of the request (`lambda:Invoke`, not `lambda:InvokeFunction`)
against `*` for every service except S3, SQS, IAM and STS, so a statement scoped to a table,
topic, function or state machine can only deny. `checks_for` gives the (action, resource)
pairs AWS evaluates for the calls this project makes:

  dynamodb  TableName (+ IndexName), RequestItems (batch), TransactItems (one action per item),
            ResourceArn / StreamArn / TableArn
  s3        moto's bucket and object ARNs, plus: HeadBucket and listings need s3:ListBucket;
            CopyObject / UploadPartCopy also read the source; DeleteObjects deletes each key;
            SSE-KMS: reading needs kms:Decrypt, writing kms:GenerateDataKey on the object's
            or the bucket's key (with that key's policy)
  sns       TopicArn / TargetArn / ResourceArn, CreateTopic's name; Publish to a topic with a
            KMS key also needs kms:GenerateDataKey and kms:Decrypt on it
  lambda    the function (and qualifier) of the path, CreateFunction's name, layers, tags;
            Invoke is lambda:InvokeFunction
  states    stateMachineArn / executionArn / mapRunArn / resourceArn, CreateStateMachine's name
  ssm       Name / Names / Path as parameter ARNs
  kms       the key (an alias resolved to it), with its key policy
  sqs, sts, iam  as moto resolves them; CreateQueue's name
  events    PutEvents' buses, rule names
Everything else is checked against "*" (moto's default).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from local.iam.policy import Policy

# Signing name (the credential scope of SigV4) -> IAM service prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "execute-api"}
# Operation name -> IAM action name, where they differ.
ACTION_NAMES = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "ListObjectsV2"): "ListBucket",
}
_DYNAMODB_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


@dataclass(frozen=True)
class Check:
    """One permission a request needs. `resource_policy`: a policy of the resource that must
    also allow it (a KMS key policy), beside the caller's own policies."""

    action: str
    resource: str
    resource_policy: Policy | None = None


@dataclass(frozen=True)
class Call:
    """What the resolvers know of a request."""

    response: Any  # moto's BaseResponse for this request
    service: str  # signing name
    operation: str
    resource: str  # what moto resolved ("*" for most services)
    account: str
    region: str

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        return "aws-us-gov" if self.region.startswith("us-gov-") else "aws"

    def arn(self, service: str, resource: str, *, region: str | None = None) -> str:
        region = self.region if region is None else region
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"

    def param(self, name: str) -> Any:
        params = getattr(self.response, "params", None)
        if isinstance(params, dict) and params.get(name) is not None:
            return params[name]
        body = getattr(self.response, "body", None)
        if isinstance(body, dict) and body.get(name) is not None:
            return body[name]
        try:
            value = self.response._get_param(name)
        except Exception:  # noqa: BLE001 - a parser that does not know the name
            value = None
        if value is not None:
            return value
        return _json_body(self.response).get(name)


def checks_for(call: Call) -> list[Check]:
    prefix = IAM_PREFIX.get(call.service, call.service)
    operation = ACTION_NAMES.get((call.service, call.operation), call.operation)
    action = f"{prefix}:{operation}"
    resolver = _RESOLVERS.get(call.service)
    checks = resolver(call, action) if resolver else None
    return checks or [Check(action, call.resource or "*")]


def _json_body(response: Any) -> dict[str, Any]:
    raw = getattr(response, "raw_body", None) or b""
    try:
        body = json.loads(raw or b"{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


# ---------------------------------------------------------------- DynamoDB
def _dynamodb(call: Call, action: str) -> list[Check]:
    def table(name: str, index: str | None = None) -> str:
        arn = name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")
        return f"{arn}/index/{index}" if index else arn

    if items := call.param("TransactItems"):
        checks = []
        for item in items:
            for kind, spec in item.items():
                if kind in _DYNAMODB_TRANSACT_ACTIONS and isinstance(spec, dict) and spec.get("TableName"):
                    checks.append(Check(f"dynamodb:{_DYNAMODB_TRANSACT_ACTIONS[kind]}", table(spec["TableName"])))
        return checks
    if requests := call.param("RequestItems"):
        return [Check(action, table(name)) for name in requests]
    if name := call.param("TableName"):
        return [Check(action, table(name, call.param("IndexName")))]
    for key in ("ResourceArn", "StreamArn", "TableArn"):
        if arn := call.param(key):
            return [Check(action, arn)]
    return []


# ---------------------------------------------------------------- S3
def _s3(call: Call, action: str) -> list[Check]:
    response = call.response
    headers = response.headers
    checks = [Check(action, call.resource)]
    bucket, _, key = call.resource.split(":::", 1)[-1].partition("/")
    if call.operation == "DeleteObject" and response.method == "POST":  # DeleteObjects: each key
        checks = [Check(action, f"arn:{call.partition}:s3:::{bucket}/{k}") for k in _deleted_keys(response)] or checks
    source = headers.get("x-amz-copy-source")
    if source and call.operation == "PutObject":
        source_bucket, _, rest = unquote(source).lstrip("/").partition("/")
        source_key, _, version = rest.partition("?versionId=")
        verb = "s3:GetObjectVersion" if version else "s3:GetObject"
        checks.append(Check(verb, f"arn:{call.partition}:s3:::{source_bucket}/{source_key}"))
        checks += _s3_kms(call, source_bucket, source_key, reading=True)
    if key and call.operation in ("GetObject", "GetObjectVersion"):
        checks += _s3_kms(call, bucket, key, reading=True)
    if key and call.operation == "PutObject":
        checks += _s3_kms(call, bucket, key, reading=False)
    return checks


def _deleted_keys(response: Any) -> list[str]:
    try:
        root = ElementTree.fromstring(response.body or b"")  # noqa: S314 - a local client's request
    except ElementTree.ParseError:
        return []
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]


def _s3_kms(call: Call, bucket_name: str, key_name: str, *, reading: bool) -> list[Check]:
    """SSE-KMS: S3 uses the key on the caller's behalf, so the caller needs key permissions."""
    from moto.s3.models import s3_backends

    backend = s3_backends[call.account][call.partition]
    try:
        bucket = backend.get_bucket(bucket_name)
    except Exception:  # noqa: BLE001 - no such bucket: S3 answers that itself
        return []
    key_id = None
    if reading:
        obj = bucket.keys.get(key_name) if hasattr(bucket, "keys") else None
        if obj is not None and getattr(obj, "encryption", None) == "aws:kms":
            key_id = obj.kms_key_id
        if obj is None:
            return []
        actions = ["kms:Decrypt"]
    else:
        headers = call.response.headers
        if headers.get("x-amz-server-side-encryption") == "aws:kms":
            key_id = headers.get("x-amz-server-side-encryption-aws-kms-key-id") or "alias/aws/s3"
        elif not headers.get("x-amz-server-side-encryption"):
            default = ((bucket.encryption or {}).get("Rule") or {}).get("ApplyServerSideEncryptionByDefault") or {}
            if default.get("SSEAlgorithm") == "aws:kms":
                key_id = default.get("KMSMasterKeyID") or "alias/aws/s3"
        # A multipart upload reads its data keys back when it completes.
        actions = ["kms:GenerateDataKey", "kms:Decrypt"] if _is_multipart(call.response) else ["kms:GenerateDataKey"]
    if not key_id:
        return []
    return _kms_checks(call, key_id, actions)


def _is_multipart(response: Any) -> bool:
    query = response.querystring
    return "uploads" in query or "uploadId" in query


def _kms_checks(call: Call, key_id: str, actions: list[str]) -> list[Check]:
    key = _kms_key(call, key_id)
    if key is None:  # an AWS managed key (alias/aws/s3) or one moto does not know: not checked
        return []
    policy = Policy.parse(f"key policy of {key.arn}", key.policy) if getattr(key, "policy", None) else None
    return [Check(action, key.arn, policy) for action in actions]


def _kms_key(call: Call, key_id: str) -> Any:
    from moto.kms.models import kms_backends

    region = key_id.split(":")[3] if key_id.startswith("arn:") else call.region
    account = key_id.split(":")[4] if key_id.startswith("arn:") else call.account
    backend = kms_backends[account][region]
    try:
        return backend.describe_key(key_id)
    except Exception:  # noqa: BLE001
        return None


def _kms(call: Call, action: str) -> list[Check]:
    """KMS authorizes against the key's ARN (an alias names it) and always asks the key policy."""
    key_id = call.param("KeyId") or call.param("TargetKeyId")
    if not key_id:  # e.g. Decrypt naming no key, ListKeys: checked against "*"
        return []
    key = _kms_key(call, key_id)
    if key is None:
        return [Check(action, key_id if key_id.startswith("arn:") else call.arn("kms", f"key/{key_id}"))]
    policy = Policy.parse(f"key policy of {key.arn}", key.policy) if getattr(key, "policy", None) else None
    return [Check(action, key.arn, policy)]


# ---------------------------------------------------------------- SNS
def _sns(call: Call, action: str) -> list[Check]:
    if call.operation == "CreateTopic" and (name := call.param("Name")):
        return [Check(action, call.arn("sns", name))]
    arn = call.param("TopicArn") or call.param("TargetArn") or call.param("ResourceArn")
    if not arn and (subscription := call.param("SubscriptionArn")):
        arn = subscription.rsplit(":", 1)[0]
    if not arn:
        return []
    checks = [Check(action, arn)]
    if call.operation in ("Publish", "PublishBatch"):
        checks += _topic_key_checks(call, arn)
    return checks


def _topic_key_checks(call: Call, topic_arn: str) -> list[Check]:
    from moto.sns.models import sns_backends

    try:
        region, account = topic_arn.split(":")[3], topic_arn.split(":")[4]
        topic = sns_backends[account][region].get_topic(topic_arn)
    except Exception:  # noqa: BLE001 - no such topic: SNS answers that itself
        return []
    key_id = getattr(topic, "kms_master_key_id", None)
    return _kms_checks(call, key_id, ["kms:GenerateDataKey", "kms:Decrypt"]) if key_id else []


# ---------------------------------------------------------------- Lambda
_LAMBDA_PATH = re.compile(r"^/[^/]+/functions/([^/]+)")
_LAYER_PATH = re.compile(r"^/[^/]+/layers/([^/]+)(?:/versions/([^/]+))?")


def _lambda(call: Call, action: str) -> list[Check]:
    response = call.response
    path = unquote(getattr(response, "path", "") or "")
    if tags := re.match(r"^/[^/]+/tags/(.+)$", path):
        return [Check(action, unquote(tags.group(1)))]
    if layer := _LAYER_PATH.match(path):
        version = f":{layer.group(2)}" if layer.group(2) else ""
        return [Check(action, call.arn("lambda", f"layer:{layer.group(1)}{version}"))]
    name = None
    if match := _LAMBDA_PATH.match(path):
        name = unquote(match.group(1))
    elif call.operation == "CreateFunction":
        name = call.param("FunctionName")
    if not name:
        return []
    qualifier = _first(response.querystring.get("Qualifier")) if hasattr(response, "querystring") else None
    return [Check(action, _function_arn(call, name, qualifier))]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _function_arn(call: Call, name: str, qualifier: str | None) -> str:
    """name, name:qualifier, account:function:name or a full ARN -> the function's ARN."""
    if name.startswith("arn:"):
        arn = name
    elif ":function:" in name:
        account, _, rest = name.partition(":function:")
        arn = f"arn:{call.partition}:lambda:{call.region}:{account}:function:{rest}"
    else:
        arn = call.arn("lambda", f"function:{name}")
    if qualifier and arn.count(":") == 6:
        arn = f"{arn}:{qualifier}"
    return arn


# ---------------------------------------------------------------- Step Functions
def _states(call: Call, action: str) -> list[Check]:
    if call.operation == "CreateStateMachine" and (name := call.param("name")):
        return [Check(action, call.arn("states", f"stateMachine:{name}"))]
    if call.operation == "CreateActivity" and (name := call.param("name")):
        return [Check(action, call.arn("states", f"activity:{name}"))]
    for key in ("stateMachineArn", "executionArn", "mapRunArn", "activityArn", "resourceArn"):
        if arn := call.param(key):
            return [Check(action, arn)]
    return []


# ---------------------------------------------------------------- Parameter Store
def _ssm(call: Call, action: str) -> list[Check]:
    def parameter(name: str) -> str:
        if name.startswith("arn:"):
            return name
        name = name.split(":", 1)[0]  # a version or label selector
        return call.arn("ssm", f"parameter{name}" if name.startswith("/") else f"parameter/{name}")

    if names := call.param("Names"):
        return [Check(action, parameter(n)) for n in names]
    if name := call.param("Name"):
        return [Check(action, parameter(name))]
    if path := call.param("Path"):
        return [Check(action, parameter(path))]
    return []


# ---------------------------------------------------------------- SQS, EventBridge
def _sqs(call: Call, action: str) -> list[Check]:
    if call.operation == "CreateQueue" and (name := call.param("QueueName")):
        return [Check(action, call.arn("sqs", name))]
    return []


def _events(call: Call, action: str) -> list[Check]:
    def bus(name: str | None) -> str:
        name = name or "default"
        return name if name.startswith("arn:") else call.arn("events", f"event-bus/{name}")

    if entries := call.param("Entries"):
        if call.operation == "PutEvents":
            return [Check(action, bus(e.get("EventBusName"))) for e in entries if isinstance(e, dict)]
    rule = call.param("Rule") if call.operation in ("PutTargets", "RemoveTargets", "ListTargetsByRule") else None
    rule = rule or (call.param("Name") if "Rule" in call.operation else None)
    if rule:
        if rule.startswith("arn:"):
            return [Check(action, rule)]
        bus_name = call.param("EventBusName")
        path = f"rule/{bus_name}/{rule}" if bus_name and bus_name != "default" else f"rule/{rule}"
        return [Check(action, call.arn("events", path))]
    return []


# ---------------------------------------------------------------- Glue Data Catalog
def _glue(call: Call, action: str) -> list[Check]:
    """A table call is evaluated on the catalog, the database and the table, each of which the
    caller's policy must allow (Glue's "Specifying AWS Glue resource ARNs")."""
    if call.operation in ("GetDatabase", "DeleteDatabase", "UpdateDatabase"):
        database, table = call.param("Name"), None
    else:
        table_input = call.param("TableInput")
        database = call.param("DatabaseName")
        table = call.param("Name") or call.param("TableName") or (table_input or {}).get("Name")
    if not database:
        return []
    checks = [Check(action, call.arn("glue", "catalog")), Check(action, call.arn("glue", f"database/{database}"))]
    if table:
        checks.append(Check(action, call.arn("glue", f"table/{database}/{table}")))
    return checks


# ---------------------------------------------------------------- Athena
def _athena(call: Call, action: str) -> list[Check]:
    """Query calls are evaluated on the query's workgroup (Athena's resource type for them)."""
    workgroup = call.param("WorkGroup") if call.operation == "StartQueryExecution" else None
    query_id = call.param("QueryExecutionId")
    if workgroup is None and query_id:
        from moto.athena.models import athena_backends

        execution = athena_backends[call.account][call.region].executions.get(query_id)
        if execution is None:
            return []  # Athena answers that the query does not exist
        workgroup = execution.workgroup.name if execution.workgroup else "primary"
    if workgroup is None and call.operation != "StartQueryExecution":
        return []
    return [Check(action, call.arn("athena", f"workgroup/{workgroup or 'primary'}"))]


_RESOLVERS = {
    "athena": _athena,
    "glue": _glue,
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sns": _sns,
    "lambda": _lambda,
    "states": _states,
    "ssm": _ssm,
    "kms": _kms,
    "sqs": _sqs,
    "events": _events,
}
