"""Load through a local deployment: a burst of small files, then one large file.

    python bench/bench_load.py [--files 40] [--rows 2000] [--large-mb 100] [--days 3]
                               [--lambda-limit 4] [--markdown-out FILE]

A fresh emulator and deployment (the end-to-end suite's settings, local/workspace.py:
LOCAL_SETTINGS, with chunks of `--chunk-mib` and a deployment's id partitions of
DEDUP_PARTITION_RECORDS, not the suite's small ones made to give a few MB many partitions).
Every file is uploaded to incoming/ as `aws s3 cp` does (multipart above 8 MB) and started by
its upload; the clock runs from the upload to the job's LOADED (its record's stage time). Each
file books its rows over `--days` booking dates, as a day's file with its late bookings does
(every date is a partition load writes). The emulator runs each invocation on this machine's
cores, so the figures measure the pipeline's own overhead and admission, not Lambda's capacity.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import publish  # noqa: E402
from handlers.logic.requests import job_id_for_object  # noqa: E402
from lake.defaults import DEDUP_PARTITION_RECORDS  # noqa: E402
from local.workspace import LOCAL_SETTINGS, Emulator, Target, Workspace  # noqa: E402
from pipeline_cli.deployment import Deployment  # noqa: E402
from pipeline_cli.samples import write_transactions  # noqa: E402

FINISHED = ("LOADED", "REJECTED", "FAILED")


def _loaded_at(job: dict) -> float:
    return datetime.fromisoformat(job["stageTimes"]["load"].replace("Z", "+00:00")).timestamp()


def _push(target: Target, deployment: Deployment, files: list[Path], prefix: str) -> tuple[float, list[dict], dict]:
    """Upload every file at once; wait for their jobs. (seconds, jobs, upload time per job)."""
    # The emulator assembles a multipart upload of a few GB in minutes (S3: seconds); a retry of
    # CompleteMultipartUpload after the SDK's 60 s read timeout then fails with a 500.
    s3 = target.client("s3", config=Config(read_timeout=900))
    uploaded: dict[str, float] = {}

    def upload(path: Path) -> None:
        key = f"incoming/{prefix}/{path.name}"
        sent = time.time()
        # As `aws s3 cp` uploads: one PUT up to 8 MB, a multipart upload of 8 MB parts above.
        s3.upload_file(str(path), deployment.bucket, key)
        version = s3.head_object(Bucket=deployment.bucket, Key=key).get("VersionId")
        uploaded[job_id_for_object(key=key, version_id=version)] = sent

    started = time.monotonic()
    threads = [threading.Thread(target=upload, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    while True:
        jobs = [deployment.job(job_id) for job_id in uploaded]
        if all(job and job.get("status") in FINISHED for job in jobs):
            return time.monotonic() - started, jobs, uploaded
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--large-mb", type=float, default=100)
    parser.add_argument("--chunk-mib", type=int, default=8)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--lambda-limit", type=int, default=4)
    parser.add_argument("--markdown-out")
    args = parser.parse_args()
    settings = {"CHUNK_BYTES": str(args.chunk_mib << 20), "DEDUP_PARTITION_RECORDS": str(DEDUP_PARTITION_RECORDS)}
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    small = [
        write_transactions(work / f"small-{n:03d}.csv", rows=args.rows, days=args.days, seed=n)
        for n in range(args.files)
    ]
    large_rows = int(args.large_mb * 1_000_000 / 95)  # write_transactions' rows are about 95 bytes
    large = write_transactions(work / "large.csv", rows=large_rows, days=args.days, seed=999)

    workspace = Workspace("bench-load").create()
    emulator = Emulator.start(workspace)
    target = Target(emulator=emulator, workspace=workspace, settings=settings)
    rows_out: list[str] = []
    try:
        target.make("deploy")
        os.environ.update(target.aws_env)  # the pipeline_cli clients of this process
        deployment = Deployment.discover(target.suffix)
        emulator.lambda_concurrency(args.lambda_limit, set_limit=True)
        runs = ((f"burst of {args.files} files of {args.rows:,} rows", small), ("one large file", [large]))
        for label, files in runs:
            seconds, jobs, uploaded = _push(target, deployment, files, prefix=label.split()[0])
            capacity = emulator.lambda_concurrency()
            statuses = sorted({job["status"] for job in jobs})
            latencies = [_loaded_at(job) - uploaded[job["jobId"]] for job in jobs if job["status"] == "LOADED"]
            rows = sum(int((job.get("counts") or {}).get("records", 0)) for job in jobs)  # none if FAILED
            megabytes = sum(path.stat().st_size for path in files) / 1_000_000
            chunks = sum(int(job["plan"]["chunks"]) for job in jobs)
            median, worst = ("-", "-")  # no job LOADED
            if latencies:
                median, worst = f"{statistics.median(latencies):.0f}", f"{max(latencies):.0f}"
            rows_out.append(
                f"| {label} ({megabytes:.0f} MB, {chunks} chunks) | {', '.join(statuses)} | {seconds:.0f} | "
                f"{len(jobs) / seconds * 60:.1f} | {rows / seconds:,.0f} | {median} | "
                f"{worst} | {capacity['peak']} / {capacity['throttled']} |"
            )
            emulator.lambda_concurrency(args.lambda_limit, set_limit=True)  # counts back to zero
    finally:
        emulator.stop()
    caps = {name: LOCAL_SETTINGS[name] for name in ("MAX_RUNNING_JOBS", "MAP_MAX_CONCURRENCY")}
    table = "\n".join(
        [
            f"Caps: {', '.join(f'`{k}={v}`' for k, v in caps.items())}, `CHUNK_BYTES={args.chunk_mib} MiB`, "
            f"local Lambda concurrency limit {args.lambda_limit}; each file booked over {args.days} days.",
            "",
            "| through the local deployment | outcome | seconds | jobs/min | rows/s | upload -> LOADED median s "
            "| worst s | Lambda peak / throttled |",
            "|---|---|---:|---:|---:|---:|---:|---|",
            *rows_out,
        ]
    )
    return publish(table, args.markdown_out)


if __name__ == "__main__":
    sys.exit(main())
