"""Who calls: the deployer, role sessions assumed by services, and their policies.

The deployer is an IAM user created inside moto with the fixed access key `test`/`test` that
Terraform, the CLI and the tests use, and an inline policy that allows everything: it is the
administrator who deploys. A Lambda function or a state machine runs as a session of its own
role, assumed through moto's STS only if the role's trust policy lets the service assume it
(principal `lambda.amazonaws.com` / `states.amazonaws.com`, with aws:SourceAccount and, for
a function, aws:SourceArn in the request context, as AWS sets them).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from local.iam.policy import Policy, Principal, Request, evaluate, names_principal_explicitly

DEPLOYER_USER = "local-deployer"
DEPLOYER_ACCESS_KEY = "test"
DEPLOYER_SECRET_KEY = "test"  # noqa: S105 - the emulator's fixed, public fake credentials
DEFAULT_ACCOUNT = "123456789012"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "DeployerAdministersTheAccount", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}
SESSION_SECONDS = 3600
RENEW_BEFORE_SECONDS = 300  # cached sessions are renewed this long before they expire


class RoleNotAssumable(Exception):
    """The role does not exist, or its trust policy does not let this principal assume it."""


def iam_backend(account: str = DEFAULT_ACCOUNT) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def ensure_deployer(account: str = DEFAULT_ACCOUNT) -> None:
    """The `test` access key belongs to an administrator user of the account (idempotent)."""
    from moto.iam.models import AccessKey

    backend = iam_backend(account)
    if DEPLOYER_ACCESS_KEY in backend.access_keys:
        return
    if DEPLOYER_USER not in backend.users:
        backend.create_user(region_name="us-east-1", user_name=DEPLOYER_USER)
    backend.put_user_policy(DEPLOYER_USER, "administrator", json.dumps(ADMIN_POLICY))
    key = AccessKey(DEPLOYER_USER, prefix="AKIA", account_id=account)
    key.access_key_id, key.secret_access_key = DEPLOYER_ACCESS_KEY, DEPLOYER_SECRET_KEY
    backend.users[DEPLOYER_USER].access_keys.append(key)
    backend.access_keys[DEPLOYER_ACCESS_KEY] = key


# ---------------------------------------------------------------- policies of a caller
def identity_policies(access_key: Any) -> list[Policy]:
    """The inline and attached policies of the user or role behind one of moto's access keys."""
    role_name = getattr(access_key, "_owner_role_name", None)
    if role_name is None:  # a user: moto collects its own, group and attached policies
        return [_as_policy(p, f"policy {i}") for i, p in enumerate(access_key.collect_policies())]
    backend = access_key.backend
    try:
        inline = [Policy.parse(*backend.get_role_policy(role_name, n)) for n in backend.list_role_policies(role_name)]
        attached, _ = backend.list_attached_role_policies(role_name)
    except Exception:  # noqa: BLE001 - the role was deleted: its sessions may do nothing
        return []
    return [*inline, *(_as_policy(p, p.name) for p in attached)]


def _as_policy(policy: Any, fallback_name: str) -> Policy:
    from moto.iam.models import ManagedPolicy

    if isinstance(policy, ManagedPolicy):
        version = next(v for v in policy.versions if v.is_default)
        return Policy.parse(policy.name, version.document)
    if isinstance(policy, dict):  # an inline policy of a user: {"policy_name", "policy_document"}
        return Policy.parse(policy.get("policy_name", fallback_name), policy["policy_document"])
    return Policy.parse(fallback_name, policy)


def role_by_arn(role_arn: str) -> Any:
    account = role_arn.split(":")[4]
    try:
        return iam_backend(account).get_role_by_arn(role_arn)
    except Exception as exc:  # noqa: BLE001 - moto's NoSuchEntity / NotFound
        raise RoleNotAssumable(f"role {role_arn} does not exist") from exc


def trust_allows(role_arn: str, principal: Principal, context: dict[str, Any]) -> tuple[bool, bool]:
    """(the trust policy allows sts:AssumeRole, it names the principal itself)."""
    role = role_by_arn(role_arn)
    trust = [Policy.parse(f"trust policy of {role.name}", role.assume_role_policy_document)]
    request = Request("sts:AssumeRole", role_arn, principal, context)
    return evaluate(trust, request, resource_policy=True).allowed, names_principal_explicitly(trust, request)


# ---------------------------------------------------------------- service sessions
@dataclass(frozen=True)
class Session:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: float  # epoch seconds
    arn: str

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at)),
            "Arn": self.arn,
        }


_lock = threading.Lock()
_sessions: dict[tuple[str, str, str | None], Session] = {}


def service_session(
    role_arn: str, *, service: str, source_arn: str | None = None, session_name: str | None = None
) -> Session:
    """A session of `role_arn` assumed by AWS service `service` (e.g. lambda.amazonaws.com) for a
    resource of the role's account, cached until shortly before it expires."""
    cache_key = (role_arn, service, source_arn)
    with _lock:
        cached = _sessions.get(cache_key)
        if cached and cached.expires_at - time.time() > RENEW_BEFORE_SECONDS:
            return cached
    account = role_arn.split(":")[4]
    context: dict[str, Any] = {"aws:SourceAccount": account}
    if source_arn:
        context["aws:SourceArn"] = source_arn
    allowed, _ = trust_allows(role_arn, Principal(service=service), context)
    if not allowed:
        raise RoleNotAssumable(f"the trust policy of {role_arn} does not let {service} assume it")
    session = _assume(role_arn, session_name or service.split(".")[0], account)
    with _lock:
        _sessions[cache_key] = session
    return session


def _assume(role_arn: str, session_name: str, account: str) -> Session:
    from moto.sts.models import sts_backends

    assumed = sts_backends[account]["aws"].assume_role(
        region_name="us-east-1",
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy=None,
        duration=SESSION_SECONDS,
        external_id=None,
    )
    return Session(
        access_key_id=assumed.access_key_id,
        secret_access_key=assumed.secret_access_key,
        session_token=assumed.session_token,
        expires_at=time.time() + SESSION_SECONDS,
        arn=assumed.arn,
    )


def forget_sessions() -> None:
    with _lock:
        _sessions.clear()
