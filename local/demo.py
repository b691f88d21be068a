"""`make demo`: jobs through the deployed pipeline, the way it runs unattended.

1. the product description's sample payload {"jobId": "test-123", "data": {"sample": "data"}}, by hand
2. a generated transactions file with a few bad rows, uploaded to incoming/ with the plain S3
   API: the upload starts its job (S3 -> EventBridge -> Step Functions), nobody calls start;
   its report (`pipeline report`) is written to .local/demo/report.html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from handlers.logic.requests import job_id_for_object
from pipeline_cli.deployment import Deployment, client, default_suffix
from pipeline_cli.progress import follow, follow_job, summary
from pipeline_cli.report import render_html
from pipeline_cli.report_cmd import write_page
from pipeline_cli.report_data import report_for_job
from pipeline_cli.run_cmd import start
from pipeline_cli.samples import write_transactions

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_PAYLOAD = {"jobId": "test-123", "data": {"sample": "data"}}
DEMO_KEY = "incoming/demo/transactions.csv"


def show(deployment: Deployment, job_id: str) -> None:
    for line in summary(deployment.job(job_id), deployment=deployment):
        print(line)


def main() -> int:
    suffix = default_suffix()
    deployment = Deployment.discover(suffix)
    print(f"\n== the sample payload of the product description, started by hand: job {SEED_PAYLOAD['jobId']}")
    print("   (no transaction fields: its row is quarantined and the job ends REJECTED)")
    follow(start(deployment, job_input={**SEED_PAYLOAD, "force": True}))
    show(deployment, SEED_PAYLOAD["jobId"])

    sample = write_transactions(PROJECT_ROOT / ".local" / "demo" / "transactions.csv", rows=2000, bad_every=100)
    print(
        f"\n== {sample.relative_to(PROJECT_ROOT)} (2000 rows, 20 broken on purpose), uploaded to s3://{deployment.bucket}/{DEMO_KEY}"
    )
    print("   nobody starts it: the upload does")
    version = client("s3").put_object(Bucket=deployment.bucket, Key=DEMO_KEY, Body=sample.read_bytes()).get("VersionId")
    job_id = job_id_for_object(key=DEMO_KEY, version_id=version)
    follow_job(deployment, job_id)
    show(deployment, job_id)
    report = PROJECT_ROOT / ".local" / "demo" / "report.html"
    write_page(str(report), render_html(report_for_job(deployment=deployment, job_id=job_id)))
    print(f"\n== the job's report: {report.relative_to(PROJECT_ROOT)} (one page, no network needed: open it)")

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    stacks = f"cdktf.out/local-{suffix}/stacks"  # where `make deploy LOCAL=1` synthesized them
    print(f"""
Look around (the emulator is still running):
  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \\
         AWS_REGION=us-east-2 AWS_DEFAULT_REGION=us-east-2
  .venv/bin/pipeline status {job_id}
  .venv/bin/pipeline rejects {job_id} --out rejects.csv     # its rejected rows as sent, to fix
  aws s3 cp {sample.relative_to(PROJECT_ROOT)} s3://{deployment.bucket}/incoming/again/transactions.csv
  .venv/bin/pipeline run {sample.relative_to(PROJECT_ROOT)} --wait --force
  aws s3 ls s3://{deployment.bucket}/processed/ --recursive
  aws stepfunctions start-execution \\
      --state-machine-arn $(terraform -chdir={stacks}/orchestration output -raw state_machine_arn) \\
      --input '{{"jobId": "test-456", "data": {{"sample": "data"}}}}'
Stop everything: make local-down""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
