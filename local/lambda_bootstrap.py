"""Child side of the local Lambda runner: one execution environment (see local/lambda_runner.py).

Started as ``python3 -I -S lambda_bootstrap.py CONTROL_FD`` so that nothing from the emulator's
environment (venv site-packages, PYTHONPATH, cwd) leaks in: only the stdlib plus the paths the
parent passes are importable, like in a real Lambda sandbox.

Like a Lambda execution environment it serves invocations one after another: the handler module
is imported on the first (the cold start) and stays loaded, so module-level state (settings,
clients) is reused by the next ones, as on Lambda. Protocol: one JSON request per line on stdin
    {"paths": [...], "handler": "module.function", "event": ..., "timeout": seconds,
     "result_path": file, "log_path": file, "env": {...}, "context": {...}}
The outcome is written as JSON to result_path, then a line to CONTROL_FD says it is there:
    {"ok": true, "result": <handler return value>}
    {"ok": false, "error": {"errorMessage", "errorType", "stackTrace"}}
The invocation's stdout and stderr go to log_path (its function log). A timeout ends the process:
the environment is discarded, as Lambda does.
"""

import importlib
import json
import os
import signal
import sys
import time
import traceback


def _write(path, outcome):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(outcome, f)
    os.replace(path + ".tmp", path)


def _error(exc, error_type=None):
    tb = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(tb),
    }


class _Context:
    def __init__(self, info, deadline):
        self.__dict__.update(info)
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _redirect_output(log_path):
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _invoke(req, handlers):
    result_path = req["result_path"]
    os.environ.update(req.get("env") or {})
    module_name, _, func_name = req["handler"].rpartition(".")
    if req["handler"] not in handlers:
        try:
            handlers[req["handler"]] = getattr(importlib.import_module(module_name), func_name)
        except Exception as exc:  # Lambda reports import problems under this name
            err = _error(exc, "Runtime.ImportModuleError")
            err["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
            _write(result_path, {"ok": False, "error": err})
            return
    handler = handlers[req["handler"]]

    timeout = float(req["timeout"])
    deadline = time.monotonic() + timeout

    def on_timeout(signum, frame):
        msg = f"RequestId: {req['context']['aws_request_id']} Error: Task timed out after {timeout:.2f} seconds"
        _write(
            result_path,
            {"ok": False, "timeout": True, "error": {"errorType": "Sandbox.Timedout", "errorMessage": msg}},
        )
        sys.stderr.flush()
        os._exit(0)

    # The function Timeout covers the handler call (not the import/"init" phase), as in Lambda.
    signal.signal(signal.SIGALRM, on_timeout)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result = handler(req["event"], _Context(req["context"], deadline))
        signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            outcome = {"ok": True, "result": json.loads(json.dumps(result))}
        except (TypeError, ValueError) as exc:
            outcome = {"ok": False, "error": _error(exc, "Runtime.MarshalError")}
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        traceback.print_exc()
        outcome = {"ok": False, "error": _error(exc)}
    _write(result_path, outcome)


def main():
    control = os.fdopen(int(sys.argv[1]), "w")
    requests = sys.stdin
    sys.stdin = open(os.devnull)  # noqa: SIM115 - a handler must not read the protocol
    handlers = {}
    first = True
    for line in requests:
        req = json.loads(line)
        if first:
            sys.path[:0] = req["paths"]
            first = False
        _redirect_output(req["log_path"])
        _invoke(req, handlers)
        sys.stdout.flush()
        sys.stderr.flush()
        control.write("done\n")
        control.flush()


if __name__ == "__main__":
    sys.stdout = sys.stderr  # print() in a handler is log output, as in Lambda
    main()
