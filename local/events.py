"""S3 -> EventBridge -> Step Functions on the emulator, as AWS delivers it.

moto sends S3's EventBridge notifications to the rules, but: the event is not the one S3 sends
(``eTag`` for ``etag``, the key not URL-encoded, ``time`` as a number, a fixed ``id``), input
transformers are skipped for it, a Step Functions target raises NotImplementedError (swallowed),
nothing retries or dead-letters a failed delivery, and scheduled rules never fire. This module
fills each gap:

* ``object_created_event``: S3's "Object Created" event (UUID id, ISO time, URL-encoded key as
  S3 sends it, ``etag``, ``version-id``, ``reason``).
* ``deliver``: a rule's targets with their input (``Input``, ``InputPath`` or ``InputTransformer``,
  predefined variables included); a Step Functions target starts an execution (as the target's
  role would); a delivery that fails goes to the target's dead-letter queue with EventBridge's
  error attributes.
* ``Scheduler``: rules with ``rate(...)`` schedules fire on time ("Scheduled Event").
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

LOG = logging.getLogger("local.events")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_created_event(*, account_id: str, bucket: Any, key: Any, reason: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account_id,
        "time": _now_iso(),
        "region": bucket.region_name,
        "resources": [f"arn:aws:s3:::{bucket.name}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": {
                "key": quote_plus(key.name, safe="/"),
                "size": key.size,
                "etag": key.etag.replace('"', ""),
                "version-id": key.version_id,
                "sequencer": f"{time.time_ns():020X}",
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


def target_input(target: dict[str, Any], event: dict[str, Any], rule_arn: str, rule_name: str) -> str:
    """What EventBridge hands the target, as text."""
    if "Input" in target and target["Input"] is not None:
        return target["Input"]
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        found = parse(target["InputPath"]).find(event)
        return json.dumps(found[0].value if found else None)
    transformer = target.get("InputTransformer")
    if not transformer:
        return json.dumps(event)
    from jsonpath_ng.ext import parse

    template = transformer["InputTemplate"]
    values: dict[str, Any] = {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": event["time"],
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": event,
    }
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        found = parse(path).find(event)
        values[name] = found[0].value if found else None
    json_template = template.lstrip().startswith("{")

    def substitute(match: re.Match) -> str:
        value = values.get(match.group(1))
        if isinstance(value, str):
            # Inside quotes in a JSON template, a string is inserted escaped; elsewhere as is.
            return json.dumps(value)[1:-1] if json_template else value
        return json.dumps(value)

    return re.sub(r"<([A-Za-z0-9_.\-]+)>", substitute, template)


def deliver(rule: Any, event: dict[str, Any]) -> None:
    """Every target of ``rule`` that EventBridge would invoke for ``event``."""
    for target in list(rule.targets):
        arn = target.get("Arn", "")
        if ":states:" not in arn:
            _ORIGINAL_SEND(rule, event, target)
            continue
        try:
            _start_execution(arn, target_input(target, event, rule.arn, rule.name), target.get("RoleArn"), rule.arn)
        except Exception as exc:  # noqa: BLE001 - EventBridge gives up to the dead-letter queue
            LOG.warning("delivery of event %s to %s failed: %s", event.get("id"), arn, exc)
            _dead_letter(rule, target, event, exc)


def _start_execution(state_machine_arn: str, input_text: str, role_arn: str | None, rule_arn: str) -> None:
    """As EventBridge does: with a session of the target's role when IAM is enforced (a role that
    may not start the state machine is a failed delivery, as on AWS), as an execution named by
    EventBridge (a UUID)."""
    from local import iam

    account, region = state_machine_arn.split(":")[4], state_machine_arn.split(":")[3]
    json.loads(input_text)  # an input that is not JSON is a failed delivery
    name = str(uuid.uuid4())
    if iam.enforced() and role_arn:
        import boto3

        from local.lambda_runner import CONFIG

        session = iam.assume_for_service(role_arn, service="events.amazonaws.com", source_arn=rule_arn)
        credentials = session.environment()
        boto3.client(
            "stepfunctions",
            region_name=region,
            endpoint_url=CONFIG.endpoint,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials["AWS_SESSION_TOKEN"],
        ).start_execution(stateMachineArn=state_machine_arn, name=name, input=input_text)
        return
    from moto.stepfunctions.responses import get_backend

    get_backend(account, region).start_execution(state_machine_arn, name, input_text)


def _dead_letter(rule: Any, target: dict[str, Any], event: dict[str, Any], error: Exception) -> None:
    queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not queue_arn:
        return
    from moto.sqs.models import sqs_backends

    account, region, name = queue_arn.split(":")[4], queue_arn.split(":")[3], queue_arn.split(":")[5]
    code = getattr(error, "code", None) or type(error).__name__
    attributes = {
        "ERROR_CODE": code,
        "ERROR_MESSAGE": str(error)[:256],
        "RULE_ARN": rule.arn,
        "TARGET_ARN": target["Arn"],
    }
    sqs_backends[account][region].send_message(
        queue_name=name,
        message_body=json.dumps(event),
        message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def _event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    """Replaces moto.s3.notifications._send_event_bridge_message."""
    if not event_name.startswith("s3:ObjectCreated:"):
        return  # the pipeline listens for object creation only
    from moto.events.models import events_backends

    event = object_created_event(account_id=account_id, bucket=bucket, key=key, reason=event_name.split(":")[2])
    for event_bus in events_backends[account_id][bucket.region_name].event_buses.values():
        for rule in list(event_bus.rules.values()):
            pattern = rule.event_pattern
            if rule.state == "ENABLED" and pattern.get_pattern() and pattern.matches_event(copy.deepcopy(event)):
                deliver(rule, event)


class Scheduler:
    """Fires the enabled ``rate(...)`` rules of every backend on time."""

    def __init__(self, *, tick_seconds: float = 1.0) -> None:
        self._tick = tick_seconds
        self._next: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self._fire_due(time.monotonic())
            except Exception:  # noqa: BLE001 - the scheduler must keep running
                LOG.exception("scheduled rules")

    def _fire_due(self, now: float) -> None:
        from moto.events.models import events_backends

        for account in events_backends.values():
            for backend in account.values():
                for bus in backend.event_buses.values():
                    for rule in list(bus.rules.values()):
                        period = _period_seconds(getattr(rule, "scheduled_expression", None))
                        if period is None or rule.state != "ENABLED":
                            continue
                        due = self._next.setdefault(rule.arn, now + period)
                        if now >= due:
                            self._next[rule.arn] = now + period
                            deliver(rule, _scheduled_event(rule))


def _period_seconds(expression: str | None) -> float | None:
    match = _RATE.match(expression or "")
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def _scheduled_event(rule: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": _now_iso(),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
    }


_ORIGINAL_SEND: Any = None


def install() -> None:
    """Patch moto (idempotent)."""
    global _ORIGINAL_SEND
    if _ORIGINAL_SEND is not None:
        return
    from moto.events.models import Rule
    from moto.s3 import notifications

    original = Rule.send_to_targets

    def send_one(rule: Any, event: dict[str, Any], target: dict[str, Any]) -> None:
        saved = rule.targets
        rule.targets = [target]
        try:
            original(rule, event)
        finally:
            rule.targets = saved

    def send_to_targets(self: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        # A rule with a schedule and no pattern matches no event (moto's empty pattern matches all:
        # every execution status change would start the drain again).
        if self.event_pattern.get_pattern() and self.event_pattern.matches_event(event):
            deliver(self, event)

    _ORIGINAL_SEND = send_one
    Rule.send_to_targets = send_to_targets
    notifications._send_event_bridge_message = _event_bridge_message
