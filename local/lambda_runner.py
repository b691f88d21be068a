"""Run a moto-registered Lambda function's real code without Docker.

moto only executes Lambda code inside Docker, which we do not have. This module runs
the deployed zip (plus its layers) in a subprocess of a clean interpreter
(``python -I -S local/lambda_bootstrap.py``), so a dependency that is missing from the
zip/layers fails here exactly as it would in AWS, instead of being silently found in
the emulator's venv. Like Lambda's execution environments, a process serves one invocation
at a time and stays warm for the next ones of the same function version (``ENVIRONMENTS``);
a timeout discards it.

sys.path in the child = [function dir, each layer's python dirs..., runtime-provided dir].
The runtime-provided dir stands in for what the Lambda Python runtime ships (boto3 and
its dependencies); its path comes from ``RuntimeConfig.runtime_dir`` /
env ``PIPELINE_LOCAL_RUNTIME_DIR``. ``link_runtime_dir`` builds one from the current venv.

Fault injection (``FAULTS``): the next N invocations of a named function return a
function error of the requested errorType without running the handler.

Concurrency (``SLOTS``): as on Lambda, an invocation beyond the account's concurrency limit
(``RuntimeConfig.concurrency``, env PIPELINE_LOCAL_LAMBDA_CONCURRENCY; unlimited by default) or
beyond the function's reserved concurrency is refused with TooManyRequestsException instead of
waiting. After each invocation, the metrics its output carries in embedded metric format are put
into CloudWatch (local/metrics.py), as CloudWatch Logs does on AWS.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import iam, metrics

LOG = logging.getLogger("local.lambda_runner")
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"
# Modules the real Lambda Python runtime provides (boto3 and its dependency closure).
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


@dataclass
class RuntimeConfig:
    port: int = 4566
    state_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "pipeline-emulator")
    runtime_dir: str | None = None
    python: str = sys.executable  # run with -I -S: the venv's packages are NOT visible
    concurrency: int | None = None  # the account's concurrent executions; None: unlimited

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _concurrency_from_env() -> int | None:
    raw = os.environ.get("PIPELINE_LOCAL_LAMBDA_CONCURRENCY", "").strip()
    return int(raw) if raw else None


CONFIG = RuntimeConfig(runtime_dir=os.environ.get("PIPELINE_LOCAL_RUNTIME_DIR"), concurrency=_concurrency_from_env())


class Throttled(Exception):
    """An invocation refused for lack of concurrency (Lambda's TooManyRequestsException)."""

    def __init__(self, reason: str) -> None:
        super().__init__("Rate Exceeded.")
        self.reason = reason


class ConcurrencySlots:
    """Invocations running now, in the account and per function; counted, not queued."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._per_function: dict[str, int] = {}
        self.peak = 0
        self.throttled = 0

    def acquire(self, function: str, reserved: int | None) -> None:
        with self._lock:
            if reserved is not None and self._per_function.get(function, 0) >= reserved:
                self.throttled += 1
                raise Throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
            if CONFIG.concurrency is not None and self._running >= CONFIG.concurrency:
                self.throttled += 1
                raise Throttled("ConcurrentInvocationLimitExceeded")
            self._running += 1
            self._per_function[function] = self._per_function.get(function, 0) + 1
            self.peak = max(self.peak, self._running)

    def release(self, function: str) -> None:
        with self._lock:
            self._running -= 1
            self._per_function[function] -= 1

    def reset_counts(self) -> None:
        with self._lock:
            self.peak, self.throttled = self._running, 0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "limit": CONFIG.concurrency,
                "running": self._running,
                "peak": self.peak,
                "throttled": self.throttled,
            }


SLOTS = ConcurrencySlots()


def link_runtime_dir(dest: str | os.PathLike) -> Path:
    """Make `dest` a runtime-provided dir holding symlinks to this interpreter's boto3 & deps."""
    import boto3

    site = Path(boto3.__file__).resolve().parent.parent
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_MODULES:
        link = dest / name
        if not link.exists():
            link.symlink_to(site / name)
    return dest


# ---------------------------------------------------------------- fault injection
class FaultRegistry:
    """{function name: [errorType, errorMessage, remaining]} consumed one per invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Any]] = {}

    def add(self, function: str, error_type: str, times: int = 1, message: str | None = None) -> None:
        with self._lock:
            self._faults[function] = [error_type, message or f"Injected fault: {error_type}", int(times)]

    def take(self, function: str) -> tuple[str, str] | None:
        with self._lock:
            fault = self._faults.get(function)
            if not fault:
                return None
            fault[2] -= 1
            if fault[2] <= 0:
                del self._faults[function]
            return fault[0], fault[1]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: {"errorType": v[0], "errorMessage": v[1], "times": v[2]} for k, v in self._faults.items()}

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


FAULTS = FaultRegistry()


# ---------------------------------------------------------------- code unpacking
_unpack_lock = threading.Lock()


def _unpack(zip_bytes: bytes, digest: str, kind: str) -> Path:
    """Extract a zip once into <state_dir>/cache/<kind>/<sha256>; reuse it afterwards."""
    target = CONFIG.state_dir / "cache" / kind / digest
    with _unpack_lock:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=target.parent))
            with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
                zf.extractall(tmp)
            os.replace(tmp, target)
    return target


def _layer_paths(fn: Any) -> list[str]:
    """Lambda extracts layers under /opt; /opt/python and its site-packages go on sys.path."""
    from moto.awslambda.utils import get_backend

    backend = get_backend(fn.account_id, fn.region)
    paths = []
    for layer in fn.layers:
        lv = backend.layers_versions_by_arn(layer["Arn"])
        root = _unpack(lv.code_bytes, lv.code_digest, "layers")
        site = root / "python" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        paths += [str(p) for p in (root / "python", site) if p.is_dir()]
    return paths


# ---------------------------------------------------------------- invocation
def _error_payload(error_type: str, message: str) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": []}


def _child_env(fn: Any, code_dir: Path) -> dict[str, str]:
    env = {k: str(v) for k, v in (fn.environment_vars or {}).items()}
    env.update(  # reserved variables win over the function's own, as in Lambda
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        LANG="en_US.UTF-8",
        TZ="UTC",
        LAMBDA_TASK_ROOT=str(code_dir),
        _HANDLER=fn.handler or "",
        AWS_EXECUTION_ENV=f"AWS_Lambda_{fn.run_time}",
        AWS_LAMBDA_FUNCTION_NAME=fn.function_name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(fn.memory_size),
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_GROUP_NAME=fn.logs_group_name,
        AWS_REGION=fn.region,
        AWS_DEFAULT_REGION=fn.region,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",  # noqa: S106 - fake credentials for the emulator
        AWS_SESSION_TOKEN="test",  # noqa: S106
        AWS_ENDPOINT_URL=CONFIG.endpoint,
        # No X-Ray daemon here: the SDK's segments go nowhere, as without the daemon on AWS.
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
    )
    env.update(iam.credentials_for(fn))  # a session of the function's own role (local/iam)
    return env


def _save_logs(fn: Any, request_id: str, output: str) -> None:
    log_dir = CONFIG.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{fn.function_name}.log", "a", encoding="utf-8") as f:
        f.write(f"START RequestId: {request_id}\n{output}END RequestId: {request_id}\n")
    try:  # also into moto's CloudWatch Logs, group /aws/lambda/<name> (best effort)
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        fn.save_logs(output or "(no output)")
    except Exception as exc:  # noqa: BLE001 - logging must never fail an invocation
        LOG.debug("could not write CloudWatch logs for %s: %s", fn.function_name, exc)


def run(fn: Any, event: Any) -> tuple[Any, bool, str]:
    """Invoke moto LambdaFunction `fn` with `event` -> (payload, is_error, log output).
    Raises Throttled when no concurrency is left for it."""
    reserved = getattr(fn, "reserved_concurrency", None)
    SLOTS.acquire(fn.function_name, int(reserved) if reserved not in (None, "") else None)
    try:
        return _run(fn, event)
    finally:
        SLOTS.release(fn.function_name)


class _Environment:
    """A warm execution environment: one child process serving invocations one at a time."""

    def __init__(self, fn: Any, code_dir: Path, key: tuple) -> None:
        self.key = key
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, our own bootstrap
            [CONFIG.python, "-I", "-S", str(BOOTSTRAP), str(write_end)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_child_env(fn, code_dir),
            cwd=code_dir,
            pass_fds=(write_end,),
        )
        os.close(write_end)
        self.control = os.fdopen(read_end, "r")
        self.last_used = time.monotonic()

    def invoke(self, request: dict, timeout: float) -> bool:
        """Send one request; True when the environment answered (else it died: discard it)."""
        import select

        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            return False
        ready, _, _ = select.select([self.control], [], [], timeout)
        if not ready or not self.control.readline():
            self.discard()
            return False
        self.last_used = time.monotonic()
        return True

    def discard(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.control.close()


class EnvironmentPool:
    """Idle warm environments per function version, reused like Lambda's; idle ones expire."""

    IDLE_SECONDS = 600
    MAX_IDLE_PER_KEY = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[_Environment]] = {}

    def take(self, fn: Any, code_dir: Path, key: tuple) -> _Environment:
        now = time.monotonic()
        with self._lock:
            expired = [env for envs in self._idle.values() for env in envs if now - env.last_used > self.IDLE_SECONDS]
            for envs in self._idle.values():
                envs[:] = [env for env in envs if env not in expired]
            warm = self._idle.get(key)
            environment = warm.pop() if warm else None
        for env in expired:
            env.discard()
        return environment or _Environment(fn, code_dir, key)

    def give_back(self, environment: _Environment) -> None:
        with self._lock:
            idle = self._idle.setdefault(environment.key, [])
            if len(idle) < self.MAX_IDLE_PER_KEY:
                idle.append(environment)
                return
        environment.discard()

    def clear(self) -> None:
        with self._lock:
            environments = [env for envs in self._idle.values() for env in envs]
            self._idle.clear()
        for env in environments:
            env.discard()


ENVIRONMENTS = EnvironmentPool()


def _run(fn: Any, event: Any) -> tuple[Any, bool, str]:
    request_id = str(uuid.uuid4())
    fault = FAULTS.take(fn.function_name)
    if fault:
        error_type, message = fault
        if error_type in ("timeout", TIMEOUT_ERROR_TYPE):
            error_type = TIMEOUT_ERROR_TYPE
            message = f"RequestId: {request_id} Error: Task timed out after {float(fn.timeout):.2f} seconds"
        _save_logs(fn, request_id, f"[fault injection] {error_type}: {message}\n")
        return _error_payload(error_type, message), True, ""

    try:
        code_dir = _unpack(fn.code_bytes, fn.code_digest, "functions")
        paths = [str(code_dir), *_layer_paths(fn)]
    except (zipfile.BadZipFile, OSError) as exc:
        return _error_payload("InvalidZipFileException", f"Could not unpack function code: {exc}"), True, ""
    if CONFIG.runtime_dir:
        paths.append(str(CONFIG.runtime_dir))
    # A new version of the code, its layers or its settings is a new environment, as on Lambda.
    key = (fn.function_name, fn.code_digest, tuple(paths), json.dumps(fn.environment_vars or {}, sort_keys=True))

    with tempfile.TemporaryDirectory(prefix="invoke-") as tmp:
        result_path, log_path = os.path.join(tmp, "result.json"), os.path.join(tmp, "output.log")
        request = {
            "paths": paths,
            "handler": fn.handler,
            "event": event,
            "timeout": fn.timeout,
            "result_path": result_path,
            "log_path": log_path,
            "env": {"_X_AMZN_TRACE_ID": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"},
            "context": {
                "function_name": fn.function_name,
                "function_version": "$LATEST",
                "invoked_function_arn": fn.function_arn,
                "memory_limit_in_mb": fn.memory_size,
                "aws_request_id": request_id,
                "log_group_name": fn.logs_group_name,
                "log_stream_name": request_id,
            },
        }
        started = time.monotonic()
        environment = ENVIRONMENTS.take(fn, code_dir, key)
        # The backstop covers the cold start too; the bootstrap enforces Timeout itself.
        answered = environment.invoke(request, timeout=float(fn.timeout) + 60)
        elapsed = time.monotonic() - started
        output = Path(log_path).read_text("utf-8", "replace") if os.path.exists(log_path) else ""

        if os.path.exists(result_path):
            with open(result_path, encoding="utf-8") as f:
                outcome = json.load(f)
        elif not answered and environment.process.poll() is None:
            msg = f"RequestId: {request_id} Error: Task timed out after {float(fn.timeout):.2f} seconds"
            outcome = {"ok": False, "error": _error_payload(TIMEOUT_ERROR_TYPE, msg)}
        else:
            code = environment.process.poll()
            msg = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
            outcome = {"ok": False, "error": _error_payload("Runtime.ExitError", msg)}
        if answered and not outcome.get("timeout"):
            ENVIRONMENTS.give_back(environment)
        else:
            environment.discard()

    _save_logs(fn, request_id, output + f"REPORT RequestId: {request_id} Duration: {elapsed * 1000:.2f} ms\n")
    metrics.record(output, account_id=fn.account_id, region=fn.region)
    if outcome["ok"]:
        return outcome["result"], False, output
    return outcome["error"], True, output


def tail_log_header(output: str) -> str:
    """X-Amz-Log-Result value: base64 of the last 4 KB of the invocation's log."""
    return base64.b64encode(output.encode("utf-8")[-4096:]).decode("ascii")
