"""`make demo`: two jobs through the deployed pipeline, shown stage by stage.

1. the seed's sample payload {"jobId": "test-123", "data": {"sample": "data"}}
2. a generated transactions file with a few bad rows, uploaded like `pipeline run` does
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeline_cli.deployment import Deployment, default_suffix
from pipeline_cli.progress import follow, summary
from pipeline_cli.run_cmd import start, upload
from pipeline_cli.samples import write_transactions

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_PAYLOAD = {"jobId": "test-123", "data": {"sample": "data"}}


def run_job(deployment: Deployment, title: str, job_input: dict) -> None:
    print(f"\n== {title}: job {job_input['jobId']}")
    status = follow(start(deployment, job_input=job_input))
    print(f"  execution {status}")
    for line in summary(deployment.job(job_input["jobId"]), deployment=deployment):
        print(line)


def main() -> int:
    suffix = default_suffix()
    deployment = Deployment.discover(suffix)
    run_job(deployment, "the seed's sample payload (no transaction fields: quarantined, job REJECTED)", SEED_PAYLOAD)
    sample = write_transactions(PROJECT_ROOT / ".local" / "demo" / "transactions.csv", rows=2000, bad_every=100)
    job_id = "demo-transactions"
    source = upload(deployment, file=sample, job_id=job_id)
    run_job(
        deployment,
        f"{sample.relative_to(PROJECT_ROOT)}: 2000 rows, 20 broken on purpose",
        {"jobId": job_id, "source": source, "force": True},
    )
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    stacks = f"cdktf.out/local-{suffix}/stacks"  # where `make deploy LOCAL=1` synthesized them
    print(f"""
Look around (the emulator is still running):
  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \\
         AWS_REGION=us-east-2 AWS_DEFAULT_REGION=us-east-2
  .venv/bin/pipeline status {job_id}
  .venv/bin/pipeline run {sample.relative_to(PROJECT_ROOT)} --wait
  aws --endpoint-url $AWS_ENDPOINT_URL s3 ls s3://{deployment.bucket}/ --recursive
  aws --endpoint-url $AWS_ENDPOINT_URL stepfunctions start-execution \\
      --state-machine-arn $(terraform -chdir={stacks}/orchestration output -raw state_machine_arn) \\
      --input '{{"jobId": "test-456", "data": {{"sample": "data"}}}}'
Stop everything: make local-down""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
