"""Run a moto-registered Lambda function's real code without Docker.

moto only executes Lambda code inside Docker, which we do not have. This module runs
the deployed zip (plus its layers) in a subprocess of a clean interpreter
(``python -I -S local/lambda_bootstrap.py``), so a dependency that is missing from the
zip/layers fails here exactly as it would in AWS, instead of being silently found in
the emulator's venv.

sys.path in the child = [function dir, each layer's python dirs..., runtime-provided dir].
The runtime-provided dir stands in for what the Lambda Python runtime ships (boto3 and
its dependencies); its path comes from ``RuntimeConfig.runtime_dir`` /
env ``PIPELINE_LOCAL_RUNTIME_DIR``. ``link_runtime_dir`` builds one from the current venv.

Fault injection (``FAULTS``): the next N invocations of a named function return a
function error of the requested errorType without running the handler.
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

from local import iam

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

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


CONFIG = RuntimeConfig(runtime_dir=os.environ.get("PIPELINE_LOCAL_RUNTIME_DIR"))


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
    """Invoke moto LambdaFunction `fn` with `event` -> (payload, is_error, log output)."""
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

    with tempfile.TemporaryDirectory(prefix="invoke-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        request = {
            "paths": paths,
            "handler": fn.handler,
            "event": event,
            "timeout": fn.timeout,
            "result_path": result_path,
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
        try:
            proc = subprocess.run(  # noqa: S603 - fixed argv, our own bootstrap
                [CONFIG.python, "-I", "-S", str(BOOTSTRAP)],
                input=json.dumps(request).encode(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=_child_env(fn, code_dir),
                cwd=code_dir,
                timeout=float(fn.timeout) + 10,  # backstop; the bootstrap enforces Timeout itself
            )
            output, returncode = proc.stdout.decode("utf-8", "replace"), proc.returncode
        except subprocess.TimeoutExpired as exc:
            output, returncode = (exc.output or b"").decode("utf-8", "replace"), None
        elapsed = time.monotonic() - started

        if os.path.exists(result_path):
            with open(result_path, encoding="utf-8") as f:
                outcome = json.load(f)
        elif returncode is None:
            msg = f"RequestId: {request_id} Error: Task timed out after {float(fn.timeout):.2f} seconds"
            outcome = {"ok": False, "error": _error_payload(TIMEOUT_ERROR_TYPE, msg)}
        else:
            msg = f"RequestId: {request_id} Error: Runtime exited with error: exit status {returncode}"
            outcome = {"ok": False, "error": _error_payload("Runtime.ExitError", msg)}

    _save_logs(fn, request_id, output + f"REPORT RequestId: {request_id} Duration: {elapsed * 1000:.2f} ms\n")
    if outcome["ok"]:
        return outcome["result"], False, output
    return outcome["error"], True, output


def tail_log_header(output: str) -> str:
    """X-Amz-Log-Result value: base64 of the last 4 KB of the invocation's log."""
    return base64.b64encode(output.encode("utf-8")[-4096:]).decode("ascii")
