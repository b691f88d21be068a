"""Every shell command the README and docs/ show runs here, or is checked another real way, or is
marked in its doc as not run locally with what checks it instead.

What counts as a command:

* every line of a ```bash (or ```sh) block, continuation lines joined and `# comments` dropped;
* every inline code span that starts with a program a user runs: `make`, `npx`, `pipeline`,
  `.venv/bin/pipeline`, `aws`, `python` or `export`, optionally after `NAME=value` settings.
  `terraform` and `cdktf` named inline describe what Make and the cdktf CLI run, not what a user
  types; a cdktf command for users is written `npx cdktf ...`.

A command that cannot run here is marked where it stands: `<!-- not run locally: why; instead: what
checks it -->` on the line before its block, or right before its inline span.

How each command is checked is the table CHECKS, keyed by the command exactly as the doc writes it
(whitespace collapsed). `test_every_documented_command_is_checked_or_marked` fails on a command
that is in neither the table nor marked, and on an entry no doc shows any more, so a command added
to the docs without a check fails `make test-fast` (and so a pull request). The checks:

* `Local`: run as written against the local deployment of the "main" group, each in a shell that
  first runs the README's `export AWS_ENDPOINT_URL=...` line (the session the README sets up; the
  runbooks assume a shell set up for the account), with these rewrites and no others: the
  emulator's address for `127.0.0.1:4566` (the test's emulator listens on a free port),
  `cdktf.out/local-e2e` for `cdktf.out/local-dev` and ENVIRONMENT_SUFFIX=e2e (the test's
  environment is `e2e`, the docs' default `dev`), and real values for the placeholders (`<bucket>`,
  `JOB`, `ARN`, the example date, ...). `aws` is the AWS CLI that requirements.txt pins, on PATH as
  `make install` puts it (.venv/bin).
* `Project`: run as written in a fresh copy of the project, where starting and stopping an
  emulator and clearing local Terraform state touch nothing shared.
* `Offline`: run as written here on a generated file; no deployment needed.
* `DryRun`: `make -n` of the target as it would run against AWS (LOCAL unset), after the `export`
  lines of its block, and what the dry run must show in this order: each layer's `terraform apply`
  in the environment's directory, or the recipe's commands. For targets that deploy to AWS or run
  the test suite itself.
* `Help`: the program's own `--help` names the (sub)command and every option the doc uses.
* `Elsewhere`: another test runs this very command; checked here that the test still exists and
  still runs it.
* `Named`: a program and subcommand named without arguments, covered by a documented command
  with the same words that runs.
* `Exported`: an `export` line, in effect for the commands after it in its block, which run.

Runtime beside the shared deployment, on the 2-core machine: the local session 77 s (123 s under a
load of 13), the fresh copy 10-15 s (its own xdist group), the rest about 25 s (dry runs, --help,
offline runs), spread over the other workers.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handlers.dal.jobs import SOURCE_MARKER_PREFIX
from handlers.logic.requests import job_id_for_object
from local import launcher
from local.workspace import REGION, SUFFIX, Target, Workspace, free_port
from pipeline_cli.deployment import Deployment
from pipeline_cli.progress import follow
from pipeline_cli.run_cmd import file_sha256
from pipeline_cli.samples import write_transactions
from tests.e2e.jobs import DAYS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHELL_FENCES = ("bash", "sh")
PROGRAMS = ("make", "npx", "pipeline", ".venv/bin/pipeline", "aws", "python", "export")
SETTING = re.compile(r"^[A-Z][A-Z0-9_]*=\S*$")
FENCE = re.compile(r"^\s*```(?P<info>[\w-]*)")
MARKER = re.compile(r"<!--\s*not run locally:(?P<why>[^;]*?);\s*instead:(?P<instead>.*?)-->", re.S)
CODE_SPAN = re.compile(r"(?<!`)`(?!`)(?P<code>[^`]+?)`")


@dataclass(frozen=True)
class Documented:
    doc: str
    line: int
    text: str  # as the doc writes it, whitespace collapsed
    block: str | None  # "<doc>:<line of its fence>" for a block line, None inline
    context: tuple[str, ...] = ()  # the block's `export` lines before it
    marked: str | None = None  # what checks it instead, when the doc marks it not run locally

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def doc_paths() -> list[str]:
    return ["README.md", *sorted(f"docs/{path.name}" for path in (PROJECT_ROOT / "docs").glob("*.md"))]


def is_command(text: str) -> bool:
    words = text.split()
    while words and SETTING.match(words[0]) and len(words) > 1:
        words = words[1:]
    return bool(words) and words[0] in PROGRAMS


def without_comment(line: str) -> str:
    """The line up to a `#` that starts a comment: at the start or after a blank, outside quotes."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def marker_before(text: str) -> str | None:
    """What checks a command instead, when `text` (what precedes it) ends with a marker."""
    stripped = text.rstrip()
    if not stripped.endswith("-->"):
        return None
    found = [match for match in MARKER.finditer(stripped) if match.end() == len(stripped)]
    if not found:
        return None
    why, instead = found[-1]["why"].strip(), found[-1]["instead"].strip()
    if not why or not instead:
        raise AssertionError(f"a not-run-locally marker needs a reason and what checks instead: {found[-1][0]!r}")
    return instead


def parse(doc: str, text: str) -> list[Documented]:
    """The commands of one Markdown document (module docstring: what counts)."""
    lines = text.splitlines()
    found: list[Documented] = []
    prose = list(lines)  # the document with its fenced blocks blanked, for the inline spans
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start = index
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("```")), len(lines))
        for i in range(start, min(end + 1, len(lines))):
            prose[i] = ""
        if fence["info"] in SHELL_FENCES:
            marked = marker_before("\n".join(lines[:start]))
            block = f"{doc}:{start + 1}"
            exports: list[str] = []
            pending, first = "", 0
            for number in range(start + 1, end):
                raw = lines[number]
                if not pending:
                    first = number + 1
                if raw.rstrip().endswith("\\"):
                    pending += without_comment(raw.rstrip()[:-1]) + " "
                    continue
                command = " ".join((pending + without_comment(raw)).split())
                pending = ""
                if command:
                    found.append(Documented(doc, first, command, block, tuple(exports), marked))
                    if command.startswith("export "):
                        exports.append(command)
        index = end + 1
    body = "\n".join(prose)
    for span in CODE_SPAN.finditer(body):
        code = span["code"]
        if "\n\n" in code or not is_command(" ".join(code.split())):
            continue
        line = body.count("\n", 0, span.start()) + 1
        found.append(Documented(doc, line, " ".join(code.split()), None, (), marker_before(body[: span.start()])))
    return sorted(found, key=lambda command: command.line)


def documented_commands() -> list[Documented]:
    return [command for doc in doc_paths() for command in parse(doc, (PROJECT_ROOT / doc).read_text())]


# --- how each command is checked ------------------------------------------------------------------

LAYERS = ("network", "storage", "compute", "orchestration")


@dataclass(frozen=True)
class Local:
    """Run as written against the shared local deployment (test_the_local_commands_do_what_the_docs_say)."""

    step: str


@dataclass(frozen=True)
class Project:
    """Run as written in a fresh copy of the project (test_the_project_commands_run_in_a_fresh_copy)."""

    step: str


@dataclass(frozen=True)
class Offline:
    """Run as written here, no deployment needed (test_the_offline_commands_run)."""

    step: str


@dataclass(frozen=True)
class DryRun:
    """`make -n`: each string of `shows` appears in the dry run, in this order."""

    shows: tuple[str, ...]


@dataclass(frozen=True)
class Help:
    """`argv --help` succeeds and names each option."""

    argv: tuple[str, ...]
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Elsewhere:
    """Another test runs it: `function` in `path` (a test or a fixture) holds `runs`."""

    path: str
    function: str
    runs: str


@dataclass(frozen=True)
class Named:
    """A program and subcommand named without arguments; `by`, a documented command, runs it."""

    by: str


@dataclass(frozen=True)
class Exported:
    """An `export` of a block: the commands after it in the block run with it."""


Check = Local | Project | Offline | DryRun | Help | Elsewhere | Named | Exported


def terraform_runs(environment: str, layers: tuple[str, ...] = LAYERS, verb: str = "apply") -> tuple[str, ...]:
    return tuple(f"terraform -chdir=cdktf.out/{environment}/stacks/{layer} {verb} -input=false" for layer in layers)


TO_AWS = ("to AWS",)
OPERATOR_TESTS = "tests/e2e/test_operator_view.py"
REPORT_TEST = "test_the_report_shows_the_job_records_figures_and_opens_in_chromium_with_no_error"
ROUND_TRIP_TEST = "test_rejects_exported_fixed_and_sent_back_as_the_correction_load_whole"
REPORT = (
    Help(("pipeline", "report"), ("--out",)),
    Elsewhere(OPERATOR_TESTS, REPORT_TEST, 'main(["report", job_id, "--out"'),
)
REJECTS = (
    Help(("pipeline", "rejects"), ("--out",)),
    Elsewhere(OPERATOR_TESTS, ROUND_TRIP_TEST, 'main(["rejects", jobs.loaded, "--out"'),
)
REJECTS_FIXED = (
    Help(("pipeline", "rejects"), ("--fixed", "--out")),
    Elsewhere(OPERATOR_TESTS, ROUND_TRIP_TEST, 'main(["rejects", jobs.loaded, "--fixed"'),
)
SEND_CORRECTED = (
    Help(("pipeline", "run"), ("--replaces",)),
    Elsewhere(OPERATOR_TESTS, ROUND_TRIP_TEST, 'on_pipes("run", str(corrected), "--replaces"'),
)
LOCAL_CLI = ".venv/bin/pipeline"
S3_CP = "aws --endpoint-url $AWS_ENDPOINT_URL s3 cp transactions.csv s3://<bucket>/incoming/today/transactions.csv"
START_SEED = (
    "aws --endpoint-url $AWS_ENDPOINT_URL stepfunctions start-execution --state-machine-arn "
    "$(terraform -chdir=cdktf.out/local-dev/stacks/orchestration output -raw state_machine_arn) "
    """--input '{"jobId": "test-123", "data": {"sample": "data"}}'"""
)
RERUN_FAILED = (
    "aws stepfunctions start-execution --state-machine-arn ARN --input "
    '"$(aws stepfunctions describe-execution --execution-arn FAILED_ARN --query input --output text)"'
)
AUDIT = (
    "aws stepfunctions start-execution --state-machine-arn "
    "arn:aws:states:REGION:ACCOUNT:stateMachine:pipeline-duplicate-audit-SUFFIX "
    """--input '{"bookingDate": "2026-11-30"}'"""
)
RESTART_UNDELIVERED = (
    "aws stepfunctions start-execution --state-machine-arn ARN "
    """--input '{"trigger": "s3-eventbridge", "event": <message body>}'"""
)
PIPELINE_TESTS = "tests/e2e/test_local_pipeline.py"
ENVIRONMENT_TESTS = "tests/e2e/test_environments.py"

CHECKS: dict[str, tuple[Check, ...]] = {
    # README: two commands
    "make demo": (DryRun((*terraform_runs("local-dev"), "-m local.demo")),),
    "make test": (DryRun(("actionlint", "ruff check", "-m pytest -n")),),
    "make help": (Project("help"),),
    # README: deploying to AWS (dry runs: a test must not deploy to AWS)
    "make install": (Project("install"),),
    "export ENVIRONMENT_SUFFIX=dev": (Exported(),),
    "make deploy-network": (DryRun((*TO_AWS, *terraform_runs("dev", ("network",)))),),
    "make deploy-compute": (
        DryRun((*TO_AWS, *terraform_runs("dev", ("compute",)))),
        Elsewhere(PIPELINE_TESTS, "test_compute_only_redeploy_after_a_handler_change", 'make("deploy-compute")'),
    ),
    "make deploy": (DryRun((*TO_AWS, *terraform_runs("dev"))),),
    "make deploy ENVIRONMENT_SUFFIX=qa": (DryRun((*TO_AWS, *terraform_runs("qa"))),),
    "make deploy ENVIRONMENT_SUFFIX=<env>": (DryRun((*TO_AWS, *terraform_runs("test"))),),
    "make deploy-<layer>": (DryRun(TO_AWS),),  # each layer: its own apply (dry_run_arguments)
    "npx cdktf deploy '*'": (Help(("npx", "cdktf", "deploy"), ("[stacks...]",)),),
    "npx cdktf deploy '*' --output cdktf.out/qa": (Help(("npx", "cdktf", "deploy"), ("[stacks...]", "--output")),),
    "make synth": (Local("synth"),),
    "export TF_CLI_CONFIG_FILE=$PWD/build/terraform.rc": (Project("terraform-rc"),),
    "make plan": (
        DryRun(("release/plans.py cdktf.out/dev/stacks",)),
        Elsewhere(ENVIRONMENT_TESTS, "test_destroying_one_leaves_the_other_running_with_no_changes", 'make("plan")'),
    ),
    "make drift": (
        DryRun(("release/plans.py cdktf.out/dev/stacks", "--drift")),
        Elsewhere(ENVIRONMENT_TESTS, "test_make_drift_names_what_was_changed_behind_terraforms_back", 'make("drift"'),
    ),
    "make test-fast": (DryRun(("actionlint", "ruff check", '-m pytest -m "not e2e"')),),
    "make test-e2e": (DryRun(("-m pytest", "-m e2e")),),
    "make scan": (DryRun(("checkov/run_gate.py cdktf.out/dev/stacks",)),),
    "make bench": (
        DryRun(("bench/bench_synth.py", "bench/bench_deploy.py", "bench/bench_chunks.py", "bench/bench_load.py")),
    ),
    "make lint": (DryRun(("actionlint", "ruff check")),),
    # README: running it on your machine
    "make local-up": (Project("local-up"),),
    "make deploy LOCAL=1": (Elsewhere("tests/e2e/conftest.py", "deployed", 'target.make("deploy")'),),
    "export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
    "AWS_REGION=us-east-2 AWS_DEFAULT_REGION=us-east-2": (Exported(),),
    f"{LOCAL_CLI} run transactions.csv --wait": (Local("run"),),
    S3_CP: (Local("s3-cp"),),
    f"{LOCAL_CLI} status <job-id>": (Local("status"),),
    START_SEED: (Local("start-seed"),),
    "make local-down": (Project("local-down"),),
    "PIPELINE_LOCAL_IAM=0 make local-up": (Project("local-up-without-iam"),),
    f"{LOCAL_CLI} validate FILE [--jobs N] [--chunk-bytes B] [--report OUT.json]": (Offline("validate-options"),),
    # commands named in prose
    "pipeline run": (Help(("pipeline", "run")),),
    "pipeline status": (Help(("pipeline", "status")),),
    "pipeline validate": (Help(("pipeline", "validate")),),
    "pipeline validate --jobs 1": (Help(("pipeline", "validate"), ("--jobs",)),),
    "aws s3 cp": (Named(S3_CP),),
    # docs/benchmarks.md
    "python bench/bench_chunks.py": (Help(("python", "bench/bench_chunks.py")),),
    "python bench/bench_chunks.py --only-date-items": (
        Help(("python", "bench/bench_chunks.py"), ("--only-date-items",)),
    ),
    "python bench/bench_load.py": (Help(("python", "bench/bench_load.py")),),
    "python bench/bench_load.py --files 2 --rows 100 --large-mb 2000 --chunk-mib 128": (
        Help(("python", "bench/bench_load.py"), ("--files", "--rows", "--large-mb", "--chunk-mib")),
    ),
    "python bench/bench_synth.py": (Help(("python", "bench/bench_synth.py")),),
    "python bench/bench_operator.py": (Help(("python", "bench/bench_operator.py")),),
    "python bench/bench_deploy.py": (Help(("python", "bench/bench_deploy.py")),),
    # README: the operator's view
    "pipeline run --wait": (
        Help(("pipeline", "run"), ("--wait",)),
        Elsewhere(OPERATOR_TESTS, "jobs", 'on_terminal("run", str(sample), "--wait"'),
    ),
    "pipeline validate FILE --html OUT": (
        Help(("pipeline", "validate"), ("--html",)),
        Elsewhere(
            "tests/handlers/test_report.py",
            "test_pipeline_validate_html_writes_the_page_of_the_file_it_checked",
            'main(["validate", str(path), *options])',
        ),
    ),
    "pipeline report": (Help(("pipeline", "report")),),
    "pipeline rejects": (Help(("pipeline", "rejects")),),
    f"{LOCAL_CLI} report <job-id> --out report.html": REPORT,
    f"{LOCAL_CLI} rejects <job-id> --out rejects.csv": REJECTS,
    f"{LOCAL_CLI} rejects <job-id> --fixed rejects.csv --out corrected.csv": REJECTS_FIXED,
    f"{LOCAL_CLI} run corrected.csv --replaces <job-id> --wait": (
        Help(("pipeline", "run"), ("--replaces", "--wait")),
        Elsewhere(OPERATOR_TESTS, ROUND_TRIP_TEST, '"--replaces", jobs.loaded, "--wait"'),
    ),
    # docs/data-contract.md
    "pipeline validate FILE": (Offline("validate"),),
    "pipeline validate -": (Offline("validate-stdin"),),
    "pipeline rejects JOB --out FILE": REJECTS,
    "pipeline rejects JOB --fixed FILE --out CORRECTED": REJECTS_FIXED,
    "pipeline run CORRECTED --replaces JOB": SEND_CORRECTED,
    "pipeline run FILE --replaces JOB": (
        Help(("pipeline", "run"), ("--replaces",)),
        Elsewhere("tests/e2e/test_published_ledger.py", "ledger", '"--replaces", ORIGINAL'),
    ),
    # docs/operations.md: the runbooks
    "pipeline status JOB": (Local("status"),),
    "aws s3 ls s3://<bucket>/incoming/ --recursive": (Local("s3-ls"),),
    RERUN_FAILED: (Local("rerun-failed"),),
    "pipeline status partner-a-0d4c...": (Local("status-resent"),),
    "pipeline run FILE --force": (Local("run-force"),),
    RESTART_UNDELIVERED: (Local("restart-undelivered"),),
    AUDIT: (Local("audit"),),
    "pipeline report JOB --out report.html": REPORT,
    "pipeline rejects JOB --out rejects.csv": REJECTS,
    "pipeline rejects JOB --fixed rejects.csv --out corrected.csv": REJECTS_FIXED,
    "pipeline run FILE --replaces EARLIER_JOB": (
        Help(("pipeline", "run"), ("--replaces",)),
        Elsewhere("tests/e2e/test_published_ledger.py", "ledger", '"--replaces", ORIGINAL'),
    ),
}


def unchecked(commands: list[Documented]) -> list[str]:
    return [f"{c.where}: {c.text}" for c in commands if c.marked is None and c.text not in CHECKS]


def checks_of(kind: type) -> list[tuple[str, Any]]:
    return [(text, check) for text, checks in CHECKS.items() for check in checks if isinstance(check, kind)]


def first_occurrences(kind: type) -> list[tuple[Documented, Any]]:
    """Each command checked by `kind`, once, where the docs first show it."""
    seen: dict[str, tuple[Documented, Any]] = {}
    for command in documented_commands():
        for check in CHECKS.get(command.text, ()):
            if isinstance(check, kind) and command.text not in seen:
                seen[command.text] = (command, check)
    return list(seen.values())


# --- running a documented command -----------------------------------------------------------------

# What the shells here may not inherit: a command must get its settings where the docs say.
INHERITED_NOT = ("LOCAL", "LOCAL_PORT", "LOCAL_ENDPOINT", "ENVIRONMENT_SUFFIX", "CDKTF_OUT", "TF_STATE_BUCKET")


def clean_env(root: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in INHERITED_NOT}
    # `aws` and `pipeline` as `make install` puts them (.venv/bin), as an activated venv has them.
    env["PATH"] = f"{root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["CHECKPOINT_DISABLE"] = "1"  # cdktf's version check calls home
    return {**env, **settings}


def filled(text: str, values: dict[str, str]) -> str:
    """The command with each placeholder replaced; every placeholder named must be in it."""
    for placeholder, value in values.items():
        pattern = re.escape(placeholder) if not placeholder.isidentifier() else rf"\b{placeholder}\b"
        assert re.search(pattern, text), f"{placeholder!r} is no longer in {text!r}"
        text = re.sub(pattern, lambda _m, value=value: value, text)
    return text


def shell(script: str, *, cwd: Path, env: dict[str, str], timeout: float = 300, stdin: Path | None = None):
    with stdin.open("rb") if stdin else open(os.devnull, "rb") as given:  # noqa: PTH123
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            stdin=given,
            capture_output=True,
            timeout=timeout,
        )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    )


def ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


# --- which commands the docs show, and that each has its check ------------------------------------


def test_every_documented_command_is_checked_or_marked() -> None:
    commands = documented_commands()
    assert len(commands) > 50 and len({c.doc for c in commands}) >= 6  # the parser still finds them
    missing = unchecked(commands)
    assert missing == [], (
        "documented commands with no check in tests/e2e/test_documented_commands.py (CHECKS) and no "
        "`<!-- not run locally: why; instead: what checks it -->` before them:\n" + "\n".join(missing)
    )
    shown = {c.text for c in commands}
    assert sorted(set(CHECKS) - shown) == [], "checks of commands no doc shows any more"
    runs = (Local, Project, Offline)
    for text, check in checks_of(Named):
        assert check.by in shown and any(isinstance(c, runs) for c in CHECKS[check.by]), text
        assert all(word in check.by.split() for word in text.split()), f"{check.by!r} does not run {text!r}"
    for command in commands:
        for named_test in re.findall(r"(tests/\S+\.py)::(\w+)", command.marked or ""):
            source = (PROJECT_ROOT / named_test[0]).read_text() if (PROJECT_ROOT / named_test[0]).exists() else ""
            assert f"def {named_test[1]}(" in source, f"{command.where}: its marker names a test that is not there"
        if any(isinstance(check, Exported) for check in CHECKS.get(command.text, ())):
            after = [c for c in commands if c.block == command.block and command.text in c.context]
            assert command.block and after, f"{command.where}: nothing in its block runs after {command.text!r}"


def test_a_command_added_without_a_check_is_reported_and_a_marker_counts() -> None:
    sample = "\n".join(
        [
            "Then run `make frobnicate` and `make test`; `terraform init` is what Make runs.",
            "",
            "<!-- not run locally: needs a real account; instead: tests/infra/test_workflows.py -->",
            "```bash",
            "aws organizations list-accounts   # the accounts, 'all' of them",
            "make deploy \\",
            "    ENVIRONMENT_SUFFIX=qa",
            "```",
            "",
            "```",
            "make diagram-not-a-command",
            "```",
            "Or <!-- not run locally: a pager; instead: the help test --> `pipeline frob --page`.",
        ]
    )
    found = [(c.line, c.text, c.marked) for c in parse("sample.md", sample)]
    assert found == [
        (1, "make frobnicate", None),
        (1, "make test", None),
        (5, "aws organizations list-accounts", "tests/infra/test_workflows.py"),
        (6, "make deploy ENVIRONMENT_SUFFIX=qa", "tests/infra/test_workflows.py"),
        (13, "pipeline frob --page", "the help test"),
    ]
    assert unchecked(parse("sample.md", sample)) == ["sample.md:1: make frobnicate"]
    with pytest.raises(AssertionError, match="needs a reason and what checks instead"):
        parse("bad.md", "<!-- not run locally: no reason given; instead: -->\n```bash\nmake deploy\n```\n")


# --- dry runs, help, the tests that run a command elsewhere ---------------------------------------


def dry_runs() -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """(command, the make arguments, what the dry run shows, the block's exports), per layer for <layer>."""
    found = []
    for command, check in first_occurrences(DryRun):
        arguments = command.text.removeprefix("make ")
        if "<layer>" in arguments:
            for layer in LAYERS:
                shows = (*check.shows, *terraform_runs("dev", (layer,)))
                found.append((command.text, filled(arguments, {"<layer>": layer}), shows, command.context))
        else:
            arguments = arguments.replace("<env>", "test")
            found.append((command.text, arguments, check.shows, command.context))
    return found


@pytest.mark.parametrize(("command", "arguments", "shows", "context"), dry_runs(), ids=[d[1] for d in dry_runs()])
def test_make_targets_do_what_the_docs_say_in_a_dry_run(
    command: str, arguments: str, shows: tuple[str, ...], context: tuple[str, ...]
) -> None:
    # `make -n` prints each recipe without running it (sub-makes too), so no AWS call is made.
    script = "\n".join([*context, f"make -n --no-print-directory {arguments}"])
    output = ok(shell(script, cwd=PROJECT_ROOT, env=clean_env(PROJECT_ROOT), timeout=120), command)
    position = 0
    for expected in shows:
        found = output.find(expected, position)
        assert found >= 0, f"`{command}` dry run lacks {expected!r} (after position {position}):\n{output[-3000:]}"
        position = found + len(expected)
    if any("to AWS" in expected for expected in shows):
        assert "local emulator" not in output


def helps() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    return sorted({(check.argv, check.options) for _text, check in checks_of(Help)})


@pytest.mark.parametrize(("argv", "options"), helps(), ids=lambda v: " ".join(v)[:40])
def test_each_named_program_and_option_exists(argv: tuple[str, ...], options: tuple[str, ...]) -> None:
    command = " ".join([*argv, "--help"])
    output = ok(shell(command, cwd=PROJECT_ROOT, env=clean_env(PROJECT_ROOT), timeout=120), command)
    assert Path(argv[-1]).name in output.splitlines()[0]  # the usage line names the (sub)command
    for option in options:
        assert option in output, f"`{' '.join(argv)} --help` does not offer {option}:\n{output}"


@pytest.mark.parametrize(
    "check", sorted({check for _text, check in checks_of(Elsewhere)}, key=str), ids=lambda c: c.function
)
def test_the_test_that_runs_a_command_still_runs_it(check: Elsewhere) -> None:
    source = (PROJECT_ROOT / check.path).read_text()
    functions = {
        node.name: node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert check.function in functions, f"{check.path} has no {check.function} any more"
    node = functions[check.function]
    is_fixture = any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)
    assert check.function.startswith("test_") or is_fixture
    assert check.runs in ast.get_source_segment(source, node), f"{check.path}::{check.function} stopped: {check.runs}"


class Ran:
    """The documented commands a test ran, to check at its end that it ran every one of its kind."""

    def __init__(self, kind: type) -> None:
        self.kind, self.done = kind, set()

    def __call__(self, text: str) -> str:
        checks = CHECKS.get(text, ())
        assert any(isinstance(check, self.kind) for check in checks), f"not a {self.kind.__name__}: {text}"
        self.done.add(text)
        return text

    def all_of_them(self) -> None:
        assert sorted({text for text, _check in checks_of(self.kind)} - self.done) == []


# --- commands that need no deployment -------------------------------------------------------------


def test_the_offline_commands_run(tmp_path: Path) -> None:
    ran = Ran(Offline)
    sample = write_transactions(tmp_path / "sample.csv", rows=3000, bad_every=500, days=DAYS)
    env = clean_env(PROJECT_ROOT)

    def run(text: str, values: dict[str, str], *, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
        return shell(filled(ran(text), values), cwd=PROJECT_ROOT, env=env, stdin=stdin, timeout=120)

    plain = ok(run("pipeline validate FILE", {"FILE": str(sample)}), "pipeline validate FILE")
    assert "3000 rows, 2994 valid, 6 rejected" in plain and "ACCEPTED" in plain
    # The options are optional ([...]); all of them at once, on chunks a fraction of the file.
    report = tmp_path / "report.json"
    chunked = run(
        f"{LOCAL_CLI} validate FILE [--jobs N] [--chunk-bytes B] [--report OUT.json]",
        {"FILE": str(sample), "N": "2", "B": str(64 << 10), "OUT.json": str(report), "[": "", "]": ""},
    )
    assert ok(chunked, "validate with options") == plain  # "with the same report as one"
    assert json.loads(report.read_text())["rejected"] == 6
    # "`pipeline validate -` reads standard input and needs `--format`"
    refused = run("pipeline validate -", {}, stdin=sample)
    assert refused.returncode == 2 and "--format" in refused.stderr
    from_stdin = shell("pipeline validate - --format csv", cwd=PROJECT_ROOT, env=env, stdin=sample)
    assert ok(from_stdin, "pipeline validate - --format csv") == plain.replace(str(sample), "-")
    ran.all_of_them()


def test_the_audit_measurement_holds_on_one_row_group() -> None:
    # `python bench/audit_scan.py` takes 80 s here (marked in docs/operations.md): its 24-character
    # case on one row group of the published Parquet instead, against the figure the doc quotes.
    spec = importlib.util.spec_from_file_location("audit_scan", PROJECT_ROOT / "bench" / "audit_scan.py")
    audit_scan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(audit_scan)
    rng = random.Random(7)  # noqa: S311 - as the script draws them
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex[:24].upper() for _ in range(audit_scan.ROW_GROUP_ROWS)]
    quoted = re.search(
        r"random 24-character ids, measured \| ([\d.]+) bytes a row", (PROJECT_ROOT / "docs/operations.md").read_text()
    )
    assert quoted, "docs/operations.md no longer quotes the 24-character ids' bytes a row"
    assert audit_scan.bytes_a_row(ids)["transaction_id"] == pytest.approx(float(quoted[1]), rel=0.03)


# --- commands that start and stop an emulator: in a fresh copy of the project ---------------------


def make_targets_named(commands: list[Documented]) -> set[str]:
    targets = set()
    for command in commands:
        words = command.text.split()
        while words and SETTING.match(words[0]):
            words = words[1:]
        if words[:1] == ["make"]:
            targets.update(word for word in words[1:] if not SETTING.match(word))
    return targets


def listed_by_help(output: str) -> list[re.Pattern[str]]:
    """`make help`'s verbs ("make deploy | destroy", "make plan-<layer>") as patterns."""
    verbs = []
    for line in output.splitlines():
        if line.startswith("make "):
            names = re.split(r"\s{2,}", line, maxsplit=1)[0].removeprefix("make ")
            verbs += [re.escape(name.strip()).replace("<layer>", "[a-z]+") for name in names.split("|")]
    return [re.compile(f"{verb}$") for verb in verbs]


def emulator_iam(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_pipeline/iam", timeout=5) as response:  # noqa: S310 - the local emulator
        return json.loads(response.read())


def stop_emulator_started_in(root: Path) -> None:
    """The emulator `make local-up` started in this copy, if a failed step left it running."""
    pid_file = root / ".local" / "emulator.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


@pytest.mark.e2e
@pytest.mark.xdist_group("commands")  # no shared deployment: beside the others, not after them
def test_the_project_commands_run_in_a_fresh_copy() -> None:
    ran = Ran(Project)
    root = Workspace("commands").create().src  # local-up and local-down clear the copy's local state
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The only change: the emulator's port, LOCAL_PORT (4566 unless set), a free one on a shared machine.
    env = clean_env(root, LOCAL_PORT=str(port))

    def run(text: str, then: str = "") -> str:
        return ok(shell(ran(text) + then, cwd=root, env=env, timeout=600), text)

    run("make install")  # everything installed already: it checks and returns
    verbs = listed_by_help(run("make help"))
    named = make_targets_named(documented_commands()) - {"help"}
    unlisted = sorted(t for t in named if not any(v.match(t.replace("<layer>", "network")) for v in verbs))
    assert unlisted == [], f"the README says `make help` lists every verb; it lacks {unlisted}"
    assert "plugin_cache_dir" in run("export TF_CLI_CONFIG_FILE=$PWD/build/terraform.rc", '\ncat "$TF_CLI_CONFIG_FILE"')
    try:
        assert "emulator running on " + url in run("make local-up")
        assert emulator_iam(url)["enforced"] is True
        state = root / ".state" / "local-dev"
        state.mkdir(parents=True)
        (state / "network.tfstate").write_text("{}")
        assert "local Terraform state cleared" in run("make local-down")
        assert not launcher.healthy(port) and not state.exists()
        run("PIPELINE_LOCAL_IAM=0 make local-up")
        assert emulator_iam(url)["enforced"] is False
        run("make local-down")
        assert not launcher.healthy(port)
    finally:
        stop_emulator_started_in(root)
    ran.all_of_them()


# --- the README's local session and the runbooks, against the shared deployment -------------------

ENDED = ("LOADED", "REJECTED", "FAILED", "RESENT")


def ended(deployment: Deployment, job_id: str, *, not_run: str | None = None, timeout: float = 300) -> dict[str, Any]:
    """The job once it has ended (in a run other than `not_run`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = deployment.job(job_id) or {}
        if job.get("status") in ENDED and job.get("runId") != not_run:
            return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} is {(deployment.job(job_id) or {}).get('status')} after {timeout} s")


def executions(target: Target, arn: str) -> list[dict[str, Any]]:
    sfn = target.client("stepfunctions")
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
    return [sfn.describe_execution(executionArn=e["executionArn"]) for page in pages for e in page["executions"]]


def upload_events(target: Target, arn: str, key: str) -> list[dict[str, Any]]:
    """The executions an upload of `key` started, with their input's event."""
    found = []
    for execution in executions(target, arn):
        given = json.loads(execution["input"])
        if given.get("trigger") == "s3-eventbridge" and given["event"]["detail"]["object"]["key"] == key:
            found.append({**execution, "event": given["event"]})
    return found


def settled(target: Target, machine: str, deployment: Deployment, job_id: str, key: str) -> dict[str, Any]:
    """The job once no execution of it runs (the CLI's start, its upload's start) and it is not QUEUED."""
    sfn = target.client("stepfunctions")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        running = [
            sfn.describe_execution(executionArn=e["executionArn"])["input"]
            for e in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]
        ]
        job = deployment.job(job_id) or {}
        if job.get("status") not in (None, "QUEUED") and not any(job_id in i or key in i for i in running):
            return job
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still runs after 300 s")


def started_job(output: str) -> str:
    return re.search(r"^job (\S+): s3://", output, re.M)[1]


@pytest.mark.e2e
@pytest.mark.usefixtures("deployed")  # `make deploy LOCAL=1`, the README's second line (conftest.py)
def test_the_local_commands_do_what_the_docs_say(target: Target) -> None:
    ran = Ran(Local)
    root = target.root
    deployment = Deployment.discover(SUFFIX)
    machine = deployment.state_machine_arn
    bucket = {"<bucket>": deployment.bucket}
    s3 = target.client("s3")
    # The README's export line, to the test's emulator, is the session every command here runs in:
    # nothing else gives them an endpoint or credentials (clean_env drops AWS_*).
    export = next(c for c in documented_commands() if c.text.startswith("export AWS_ENDPOINT_URL="))
    session = filled(export.text, {"127.0.0.1:4566": target.emulator.url.removeprefix("http://")})
    env = clean_env(root, ENVIRONMENT_SUFFIX=SUFFIX)  # the test's environment; the docs' default is dev

    def run(text: str, values: dict[str, str] | None = None) -> str:
        return ok(shell(f"{session}\n{filled(ran(text), values or {})}", cwd=root, env=env, timeout=600), text)

    # "`make deploy-compute` right after `make synth` starts Terraform at once": nothing to synthesize.
    synth = ok(shell(ran("make synth"), cwd=root, env=target.env), "make synth")
    assert f"synthesized cdktf.out/{target.environment}/stacks/" in synth and "app.py" not in synth

    sample = write_transactions(root / "transactions.csv", rows=200, days=DAYS, seed=23)
    output = run(f"{LOCAL_CLI} run transactions.csv --wait")
    job_id = started_job(output)
    assert deployment.job(job_id)["status"] == "LOADED" and "LOADED" in output

    # The same bytes with the plain S3 API: the upload starts a job, which finds them loaded: RESENT.
    run(S3_CP, bucket)
    key = "incoming/today/transactions.csv"
    resent_id = job_id_for_object(key=key, version_id=s3.head_object(Bucket=deployment.bucket, Key=key)["VersionId"])
    resent = ended(deployment, resent_id)
    assert resent["status"] == "RESENT" and resent["originalJobId"] == job_id

    for text, placeholder in ((f"{LOCAL_CLI} status <job-id>", "<job-id>"), ("pipeline status JOB", "JOB")):
        shown = json.loads(run(text, {placeholder: job_id}))
        assert shown["jobId"] == job_id and shown["status"] == "LOADED"
    shown = json.loads(run("pipeline status partner-a-0d4c...", {"partner-a-0d4c...": resent_id}))
    assert shown["status"] == "RESENT" and shown["originalJob"] == {"jobId": job_id, "status": "LOADED"}
    listing = run("aws s3 ls s3://<bucket>/incoming/ --recursive", bucket)
    assert key in listing and "incoming/transactions/transactions.csv" in listing

    started = run(START_SEED, {"cdktf.out/local-dev": f"cdktf.out/{target.environment}"})
    assert follow(json.loads(started)["executionArn"], say=lambda _line: None, timeout_seconds=300) == "SUCCEEDED"

    # undelivered-starts: each message is the upload's event; starting it again is harmless.
    (upload,) = upload_events(target, machine, key)
    again = run(RESTART_UNDELIVERED, {"ARN": machine, "<message body>": json.dumps(upload["event"])})
    assert follow(json.loads(again)["executionArn"], say=lambda _line: None, timeout_seconds=300) == "SUCCEEDED"
    assert deployment.job(resent_id)["runId"] == resent["runId"]
    assert deployment.job(resent_id)["status"] == "RESENT"

    # job-failed: a job fails (its plan raises once), then the runbook's command runs it again.
    failing_key = "incoming/docs/rerun.csv"
    target.emulator.inject(f"pipeline-plan-{SUFFIX}", "RuntimeError", times=1)
    try:
        s3.put_object(
            Bucket=deployment.bucket,
            Key=failing_key,
            Body=write_transactions(root / "rerun.csv", rows=100, days=DAYS, seed=29).read_bytes(),
            Metadata={"job-id": "docs-rerun"},
        )
        failed = ended(deployment, "docs-rerun")
        (execution,) = upload_events(target, machine, failing_key)
        assert follow(execution["executionArn"], say=lambda _line: None, timeout_seconds=300) == "FAILED"
    finally:
        target.emulator.clear_faults()
    assert failed["status"] == "FAILED" and failed["error"]["Error"] == "RuntimeError"
    rerun = run(RERUN_FAILED, {"ARN": machine, "FAILED_ARN": execution["executionArn"]})
    assert follow(json.loads(rerun)["executionArn"], say=lambda _line: None, timeout_seconds=300) == "SUCCEEDED"
    assert ended(deployment, "docs-rerun", not_run=failed["runId"])["status"] == "LOADED"

    # duplicate-transactions: the file's transactions again in another order (other bytes, so not a
    # re-send): the audit of one of its dates finds every transaction of that date under two jobs.
    lines = sample.read_text().splitlines()
    again_key = "incoming/docs/reordered.csv"
    reordered = "\n".join([lines[0], *reversed(lines[1:])]) + "\n"
    version = s3.put_object(Bucket=deployment.bucket, Key=again_key, Body=reordered.encode())["VersionId"]
    assert ended(deployment, job_id_for_object(key=again_key, version_id=version))["status"] == "LOADED"
    booked = [line.split(",")[2][:10] for line in lines[1:]]
    audited = run(
        AUDIT, {"REGION": REGION, "ACCOUNT": machine.split(":")[4], "SUFFIX": SUFFIX, "2026-11-30": booked[0]}
    )
    audit_arn = json.loads(audited)["executionArn"]
    assert follow(audit_arn, say=lambda _line: None, timeout_seconds=300) == "SUCCEEDED"
    found = json.loads(target.client("stepfunctions").describe_execution(executionArn=audit_arn)["output"])
    assert found["found"]["duplicates"] == booked.count(booked[0])

    # resent-files: the same bytes loaded again on purpose; the content's marker moves to the new job.
    output = run("pipeline run FILE --force", {"FILE": "transactions.csv"})
    forced = started_job(output)
    given = json.loads(
        target.client("stepfunctions").describe_execution(
            executionArn=re.search(r"^execution (\S+)$", output, re.M)[1]
        )["input"]
    )
    assert forced != job_id and given["jobId"] == forced and given["force"] is True
    # A forced run uploads under raw/, where no upload starts a job: only its own start runs it (an
    # upload under incoming/ raced it: the plain start registered first and the forced one took the job
    # over while the first still held its admission; seen in 2 runs of 3).
    assert given["source"]["key"].startswith("raw/")
    job = settled(target, machine, deployment, forced, given["source"]["key"])
    ran.all_of_them()
    assert job["status"] == "LOADED", job
    assert deployment.job(SOURCE_MARKER_PREFIX + file_sha256(sample))["ownerJobId"] == forced
