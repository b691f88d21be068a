"""The chunk work against a bare csv.reader loop, its memory, `--jobs` scaling, a 500 GB day.

    python bench/bench_chunks.py [--work-dir DIR] [--markdown-out FILE]
                                 [--sizes-mb 200,1000,2000] [--chunk-mib 128]

Generates transaction CSVs (about 1% bad rows, booking dates over three days, as a daily file
has) outside the repository. Every measurement runs in a fresh subprocess, which reports its own
peak RSS (VmHWM: the rusage of a child spawned by vfork starts at its parent's peak):

* per chunk, in three rounds: csv.reader over the chunk's bytes (the yardstick), validate
  (the validate function's work: plan's chunk read, every rule, quarantine, per-date parts, id
  keys), then transform of the parts it left (each of the chunk's dates written as Parquet with
  its daily totals) in a process of its own, as the two are separate functions; validate +
  transform is their sum, its peak the larger of the two; the median round is reported;
* the same chunk work on the last chunk of a small and of a large file (flat memory);
* transform of one booking date of the small and of the large file, from every chunk's part of it
  (flat memory: the date's daily totals are merged from sorted runs on disk);
* the large file's date as several transform items (runs of its chunks' parts; the slowest item's
  time and memory), then the merge of their partial daily totals;
* the duplicate step on one id partition of 1 and of 4 million occurrences (bounded by partition);
* `pipeline validate --jobs 1` and `--jobs 2` on the 1 GB file, twice in turn, with the reports compared;
* a model of a 500 GB day from the per-chunk figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import publish  # noqa: E402
from pipeline_cli.samples import write_bulk  # noqa: E402
from stacks.config import PipelineConfig  # noqa: E402

# AWS Lambda arm64 in us-east-2, per GB-second and per request (first pricing tier).
ARM64_GB_SECOND = 0.0000133334
REQUEST = 0.20 / 1_000_000
SEED_LAMBDA_MONTH = 50.0
DAY_BYTES = 500 * 10**9
FUNCTIONS = PipelineConfig().functions  # each step priced at the memory it is deployed with
REPEATS = 3  # rounds of the per-chunk measurements


# ------------------------------------------------------------------ measurements (in a child)
def _plan(path: str, chunk_bytes: int):
    from handlers.logic.localjob import file_blocks
    from handlers.logic.planning import plan_source

    return plan_source(file_blocks(path), fmt="csv", chunk_bytes=chunk_bytes)


def _validate(path: str, which: int, work: str) -> dict:
    """The validate function's work on one chunk; its date parts are left in ``work``."""
    from handlers.logic.chunkwork import validate_chunk
    from handlers.logic.idkeys import IdKeys, new_seed
    from handlers.logic.localjob import RangeReader
    from handlers.logic.streams import CountingReader

    plan = json.loads(os.environ["BENCH_PLAN"])
    chunk = _chunk_from(plan["chunks"][which])
    started = time.perf_counter()
    reader = RangeReader(path, chunk.start, chunk.end)
    result = validate_chunk(
        raw=CountingReader(reader),
        fmt="csv",
        header=plan["header"],
        chunk=chunk,
        keys=IdKeys(new_seed()),
        partitions=plan["partitions"],
        directory=os.path.join(work, "chunk"),
        first_record=which == 0,
    )
    reader.close()
    seconds = time.perf_counter() - started
    dates = {day: entry["path"] for day, entry in result.dates.items()}
    Path(work, "dates.json").write_text(json.dumps({"dates": dates, "valid": result.summary.valid}))
    return {
        "seconds": seconds,
        "bytes": chunk.end - chunk.start,
        "records": result.summary.records,
        "valid": result.summary.valid,
        "dates": len(result.dates),
    }


def _transform(work: str) -> dict:
    """The transform function's work on the chunk's dates (each date in the deployment is one
    invocation over every chunk's part of it; here the one chunk's parts)."""
    from handlers.logic import curated

    written = json.loads(Path(work, "dates.json").read_text())
    started = time.perf_counter()
    rows = 0
    for day, part in sorted(written["dates"].items()):
        out = os.path.join(work, f"date-{day}")
        os.makedirs(out)
        result = curated.write_date(parts=[part], job_id="bench", booking_date=day, directory=out)
        rows += sum(count for _, count in result.files)
    assert rows == written["valid"], "transform lost rows"
    return {"seconds": time.perf_counter() - started, "rows": rows}


def _stage(path: str, work: str) -> dict:
    """Every chunk of the file validated (two processes), their date parts kept for _date."""
    from handlers.logic.localjob import validate_file

    job = validate_file(path=path, fmt="csv", directory=work, jobs=2)
    day = min(day for result in job.chunks for day in result.dates)
    parts = [result.dates[day]["path"] for result in job.chunks if day in result.dates]
    part_rows = [result.dates[day]["rows"] for result in job.chunks if day in result.dates]
    rows = sum(part_rows)
    Path(work, "date.json").write_text(json.dumps({"day": day, "parts": parts, "rows": rows, "partRows": part_rows}))
    return {"chunks": len(job.chunks)}


def _date(work: str) -> dict:
    """The transform function's work on one booking date: its part of every chunk, in order."""
    from handlers.logic import curated

    staged = json.loads(Path(work, "date.json").read_text())
    out = os.path.join(work, "date-out")
    os.makedirs(out)
    started = time.perf_counter()
    result = curated.write_date(
        parts=staged["parts"],
        job_id="bench",
        booking_date=staged["day"],
        directory=out,
        on_file=lambda path, _: os.remove(path),  # uploaded and deleted, as the handler does
    )
    assert sum(count for _, count in result.files) == staged["rows"], "transform lost rows"
    return {"seconds": time.perf_counter() - started, "rows": staged["rows"], "groups": result.daily_rows}


def _item(work: str, first: int, end: int, number: int) -> dict:
    """One transform item of a date of several: parts [first, end) of the date, its files and its
    partial daily totals (a sorted run, kept in ``work`` for _merge)."""
    from handlers.logic import curated

    staged = json.loads(Path(work, "date.json").read_text())
    out = os.path.join(work, f"item-{number:05d}")
    os.makedirs(out)
    started = time.perf_counter()
    result = curated.write_date(
        parts=staged["parts"][first:end],
        job_id="bench",
        booking_date=staged["day"],
        directory=out,
        on_file=lambda path, _: os.remove(path),
        partial=True,
    )
    seconds = time.perf_counter() - started
    Path(out, "firsts.json").write_text(json.dumps({"path": result.daily_path, "firsts": result.firsts}))
    return {"seconds": seconds, "rows": sum(count for _, count in result.files), "groups": result.daily_rows}


def _merge(work: str, items: int) -> dict:
    """The date's merge: every item's partial run summed into the daily totals."""
    from handlers.logic import curated

    staged = json.loads(Path(work, "date.json").read_text())
    runs = [json.loads(Path(work, f"item-{n:05d}", "firsts.json").read_text()) for n in range(items)]
    started = time.perf_counter()
    rows, _ = curated.merge_partials(
        [(run["path"], run["firsts"]) for run in runs],
        job_id="bench",
        booking_date=staged["day"],
        path=os.path.join(work, "merged-daily.parquet"),
    )
    partial_bytes = sum(os.path.getsize(run["path"]) for run in runs)
    return {"seconds": time.perf_counter() - started, "groups": rows, "partial_bytes": partial_bytes}


def date_items(path: str, items: int, emit) -> None:
    """One date of the file as ``items`` transform items (runs of its chunks' parts), each in its own
    process, then the merge; against the date as one item."""
    from lake.defaults import TRANSFORM_ITEM_ROWS

    with tempfile.TemporaryDirectory() as staged:
        stage = run_child("stage", path, staged)
        whole = run_child("date", staged)
        part_rows = json.loads(Path(staged, "date.json").read_text())["partRows"]
        bounds = [round(n * len(part_rows) / items) for n in range(items + 1)]
        runs = [
            run_child("item", staged, first, end, number)
            for number, (first, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
        ]
        merged = run_child("merge", staged, items)
    slowest = max(runs, key=lambda run: run["seconds"])
    emit(
        f"| one date as {items} items (runs of its {stage['chunks']} chunks' parts) | rows | "
        "daily totals rows | seconds | peak RSS MB |"
    )
    emit("|---|---:|---:|---:|---:|")
    emit(
        f"| the date as one item | {whole['rows']:,} | {whole['groups']:,} | {whole['seconds']:.2f} | "
        f"{whole['peak_rss_mb']:.0f} |"
    )
    for number, run in enumerate(runs):
        mark = " (the slowest)" if run is slowest else ""
        emit(
            f"| item {number}{mark} | {run['rows']:,} | {run['groups']:,} partial | {run['seconds']:.2f} | "
            f"{run['peak_rss_mb']:.0f} |"
        )
    emit(
        f"| merge of the {items} partial runs ({merged['partial_bytes'] / 1e6:.0f} MB) | | {merged['groups']:,} | "
        f"{merged['seconds']:.2f} | {merged['peak_rss_mb']:.0f} |"
    )
    per_row = slowest["seconds"] / slowest["rows"]
    per_group = merged["seconds"] / max(1, merged["groups"])
    emit()
    emit(
        f"An item of the default `TRANSFORM_ITEM_ROWS` = {TRANSFORM_ITEM_ROWS:,} rows at the slowest item's "
        f"{per_row * 1e6:.2f} us a row: {TRANSFORM_ITEM_ROWS * per_row:.0f} s of transform's 900 s. The merge at "
        f"{per_group * 1e6:.2f} us a group and {merged['partial_bytes'] / max(1, sum(r['groups'] for r in runs)):.0f} "
        "bytes of partial run a group on /tmp."
    )


def _kernels(path: str, start: int, end: int, work: str) -> dict:
    """The floor of the vectorized design: the chunk's bytes through the array kernels alone, as if
    validate wrote the curated Parquet itself. Blocks parsed by pyarrow, the prefilter's rules, the
    id keys, normalisation, the transactions' Parquet and the daily sums; no per-row rules (the
    rows the prefilter refuses are dropped), no duplicate lookup, no staging files, no uploads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from handlers.logic import contract as c
    from handlers.logic import curated, fastcsv
    from handlers.logic.chunkwork import NORMALIZE_ROWS
    from handlers.logic.csv_blocks import BLOCK_BYTES, iter_blocks, staging_table
    from handlers.logic.idkeys import IdKeys, new_seed
    from handlers.logic.localjob import RangeReader
    from handlers.logic.normalize import normalize_batch

    header = json.loads(os.environ["BENCH_PLAN"])["header"]
    keys = IdKeys(new_seed())
    aggregator = curated.DailyAggregator(work)
    writer = curated.RowGroupWriter(
        os.path.join(work, "kernels.parquet"), curated.TRANSACTION_SCHEMA, rows=curated.ROW_GROUP_ROWS
    )
    pending: list[pa.Table] = []
    rows = 0

    def normalize() -> None:
        batch = normalize_batch(pa.concat_tables(pending).combine_chunks())
        aggregator.add(batch)
        writer.write(curated.transaction_rows(batch, "bench"))
        pending.clear()

    started = time.perf_counter()
    reader = RangeReader(path, start, end)
    for block in iter_blocks(reader, BLOCK_BYTES, strip_bom=False):
        if not fastcsv.is_simple_block(block):
            continue
        table = fastcsv.parse_block(block, header).table
        columns = {name: table.column(name).combine_chunks() for name in c.CONTRACT_FIELDS if name in header}
        accepted, id_ok = fastcsv.prefilter(columns, table.num_rows)
        keys.of_array(columns[c.TRANSACTION_ID].filter(id_ok))
        kept = table.filter(accepted)
        lines = pa.array(range(rows, rows + kept.num_rows), pa.int64())
        pending.append(staging_table(kept, lines, has_description=c.DESCRIPTION in header))
        rows += kept.num_rows
        if sum(t.num_rows for t in pending) >= NORMALIZE_ROWS:
            normalize()
    if pending:
        normalize()
    writer.close()
    with pq.ParquetWriter(
        os.path.join(work, "daily.parquet"), curated.DAILY_TOTALS_SCHEMA, **curated.PARQUET_OPTIONS
    ) as daily:
        for totals in aggregator.results("bench", date(2024, 3, 1), rows=curated.DAILY_ROW_GROUP_ROWS):
            daily.write_table(totals)
    reader.close()
    return {"seconds": time.perf_counter() - started, "rows": rows}


def _chunk_from(item: dict):
    from handlers.logic.planning import Chunk

    return Chunk(
        index=item["index"], start=item["start"], end=item["end"], first_line=item["firstLine"], records=item["records"]
    )


def _csv_reader(path: str, start: int, end: int) -> dict:
    from handlers.logic.localjob import RangeReader
    from handlers.logic.streams import CountingReader, open_text

    started = time.perf_counter()  # the chunk's bytes as validate reads them, through csv.reader
    rows = sum(1 for _ in csv.reader(open_text(CountingReader(RangeReader(path, start, end)))))
    return {"seconds": time.perf_counter() - started, "rows": rows}


def _dedupe(occurrences: int, shards: int) -> dict:
    import numpy as np
    import pyarrow as pa

    from handlers.logic.chunkwork import KEYS_SCHEMA, read_keys
    from handlers.logic.dedupe import late_occurrences

    rng = np.random.default_rng(5)
    per = occurrences // shards
    with tempfile.TemporaryDirectory() as work:
        paths = []
        for shard in range(shards):  # one partition's keys from each chunk; every 1000th in all chunks
            high = rng.integers(-(2**63), 2**63 - 1, per, dtype=np.int64)
            low = rng.integers(-(2**63), 2**63 - 1, per, dtype=np.int64)
            high[::1000], low[::1000] = np.arange(len(high[::1000])), 0
            table = pa.table([high, low, np.arange(per, dtype=np.int64)], schema=KEYS_SCHEMA)
            path = os.path.join(work, f"{shard}.arrow")
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, KEYS_SCHEMA) as writer:
                writer.write_table(table)
            paths.append(path)
            del table, high, low
        import gc

        gc.collect()
        started = time.perf_counter()
        late = late_occurrences([(shard, read_keys(path)) for shard, path in enumerate(paths)])
        return {"seconds": time.perf_counter() - started, "late": sum(len(v) for v in late.values())}


def own_peak_rss_mb() -> float:
    """This process's peak resident memory since its exec."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB


def measure(mode: str, args: list[str]) -> dict:
    if mode == "csv_reader":
        return _csv_reader(args[0], int(args[1]), int(args[2]))
    if mode == "validate":
        return _validate(args[0], int(args[1]), args[2])
    if mode == "transform":
        return _transform(args[0])
    if mode == "kernels":
        return _kernels(args[0], int(args[1]), int(args[2]), args[3])
    if mode == "dedupe":
        return _dedupe(int(args[0]), int(args[1]))
    if mode == "stage":
        return _stage(args[0], args[1])
    if mode == "date":
        return _date(args[0])
    if mode == "item":
        return _item(args[0], int(args[1]), int(args[2]), int(args[3]))
    if mode == "merge":
        return _merge(args[0], int(args[1]))
    if mode == "plan":
        started = time.perf_counter()
        plan = _plan(args[0], int(args[1]))
        return {"seconds": time.perf_counter() - started, "chunks": len(plan.chunks), "records": plan.records}
    raise SystemExit(f"unknown mode {mode}")


def run_child(mode: str, *args: object, env: dict[str, str] | None = None) -> dict:
    process = subprocess.Popen(  # noqa: S603 - runs this very script
        [sys.executable, os.path.abspath(__file__), "--measure", mode, *map(str, args)],
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    output = process.stdout.read()
    if process.wait() != 0:
        raise SystemExit(f"{mode} {args} failed")
    return json.loads(output)


def chunk_round(path: str, which: int, env: dict[str, str], *, floor: bool = False) -> tuple[dict, ...]:
    """csv.reader over the chunk's bytes, then validate, then transform of what it left, each in
    its own process (the two steps are separate functions in the deployment); with ``floor``,
    then the array kernels alone over the same bytes."""
    plan = json.loads(env["BENCH_PLAN"])["chunks"][which]
    yardstick = run_child("csv_reader", path, plan["start"], plan["end"])
    with tempfile.TemporaryDirectory() as work:
        steps = (yardstick, run_child("validate", path, which, work, env=env), run_child("transform", work))
    if not floor:
        return steps
    with tempfile.TemporaryDirectory() as work:
        return (*steps, run_child("kernels", path, plan["start"], plan["end"], work, env=env))


def plan_env(path: str, chunk_bytes: int) -> tuple[dict[str, str], dict]:
    import math

    from lake.defaults import DEDUP_PARTITION_RECORDS

    plan = _plan(path, chunk_bytes)
    document = {
        "header": plan.header,
        "partitions": max(1, math.ceil(plan.records / DEDUP_PARTITION_RECORDS)),
        "chunks": [c.to_item() for c in plan.chunks],
    }
    return {"BENCH_PLAN": json.dumps(document)}, document


def timed_cli(path: str, jobs: int, report: str, chunk_bytes: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [
            str(ROOT / ".venv" / "bin" / "pipeline"),
            "validate",
            path,
            "--jobs",
            str(jobs),
            "--chunk-bytes",
            str(chunk_bytes),
            "--report",
            report,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"pipeline validate --jobs {jobs} failed: {done.stderr}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--markdown-out", default=None)
    parser.add_argument("--sizes-mb", default="200,1000,2000", help="small, jobs, large file sizes in MB")
    parser.add_argument("--chunk-mib", type=int, default=128)
    parser.add_argument(
        "--date-items", type=int, default=4, help="transform items one date of the large file is cut into"
    )
    parser.add_argument("--only-date-items", action="store_true", help="only the row of one date as several items")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps({**measure(args.measure[0], args.measure[1:]), "peak_rss_mb": own_peak_rss_mb()}))
        return 0

    chunk_bytes = args.chunk_mib << 20
    small_mb, jobs_mb, large_mb = (float(s) for s in args.sizes_mb.split(","))
    work = args.work_dir or tempfile.mkdtemp(prefix="bench-chunks-")
    os.makedirs(work, exist_ok=True)
    files = {}
    if args.only_date_items:
        path = os.path.join(work, f"daily-{large_mb:g}MB.csv")
        if not os.path.exists(path):
            write_bulk(Path(path), size_mb=large_mb, days=3)
        date_items(path, args.date_items, print)
        return 0
    for size in (small_mb, jobs_mb, large_mb):
        path = os.path.join(work, f"daily-{size:g}MB.csv")
        if not os.path.exists(path):
            write_bulk(Path(path), size_mb=size, days=3)
        files[size] = path
    out: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        out.append(text)

    # Per chunk: a middle chunk of the 1 GB file.
    env, plan = plan_env(files[jobs_mb], chunk_bytes)
    middle = len(plan["chunks"]) // 2
    item = plan["chunks"][middle]
    chunk_mb = (item["end"] - item["start"]) / 1_000_000
    # Rounds of the yardstick and both steps back to back: this machine's speed drifts by up to a
    # fifth between minutes, so each ratio is taken within a round and the median round reported.
    rounds = [chunk_round(files[jobs_mb], middle, env, floor=True) for _ in range(REPEATS)]
    ratio = lambda r: r[0]["seconds"] / (r[1]["seconds"] + r[2]["seconds"])  # noqa: E731
    yardstick, validate, transform, kernels = sorted(rounds, key=ratio)[len(rounds) // 2]
    peaks = [max(r[k]["peak_rss_mb"] for r in rounds) for k in range(4)]
    both = {"seconds": validate["seconds"] + transform["seconds"], "peak_rss_mb": max(peaks[1:])}
    base = chunk_mb / yardstick["seconds"]
    emit(
        f"One chunk of `CHUNK_BYTES` = {args.chunk_mib} MiB ({chunk_mb:.1f} MB, {validate['records']:,} records, "
        f"{validate['dates']} booking dates), chunk {middle} of {len(plan['chunks'])} of a {jobs_mb:g} MB file; "
        f"the median of {REPEATS} rounds by the validate + transform ratio (all rounds: "
        + ", ".join(f"{ratio(r):.2f}x" for r in rounds)
        + "), peak RSS the largest of any round."
    )
    emit()
    emit("| per chunk | seconds | MB/s | ratio to csv.reader | peak RSS MB |")
    emit("|---|---:|---:|---:|---:|")
    emit(f"| bare csv.reader loop | {yardstick['seconds']:.2f} | {base:.1f} | 1.00x | {peaks[0]:.0f} |")
    for label, result, peak in (
        ("validate", validate, peaks[1]),
        ("transform", transform, peaks[2]),
        ("validate + transform", both, both["peak_rss_mb"]),
        ("the array kernels alone (the floor of this design; see below)", kernels, peaks[3]),
    ):
        speed = chunk_mb / result["seconds"]
        emit(f"| {label} | {result['seconds']:.2f} | {speed:.1f} | {speed / base:.2f}x | {peak:.0f} |")
    emit()

    emit("| chunk work (validate + transform), last chunk of | chunks in the file | seconds | peak RSS MB |")
    emit("|---|---:|---:|---:|")
    for size in (small_mb, large_mb):
        size_env, size_plan = plan_env(files[size], chunk_bytes)
        last = len(size_plan["chunks"]) - 1
        steps = chunk_round(files[size], last, size_env)[1:]
        seconds, peak = sum(step["seconds"] for step in steps), max(step["peak_rss_mb"] for step in steps)
        emit(f"| {size:g} MB file | {last + 1} | {seconds:.2f} | {peak:.0f} |")
    planned = run_child("plan", files[large_mb], chunk_bytes)
    emit(
        f"| plan of the whole {large_mb:g} MB file (quote-parity scan, SHA-256) | {planned['chunks']} | "
        f"{planned['seconds']:.2f} | {planned['peak_rss_mb']:.0f} |"
    )
    emit()

    # In the deployment one transform writes a whole booking date from every chunk's part of it.
    emit("| transform of one booking date (every chunk's part) of | rows | daily totals rows | seconds | peak RSS MB |")
    emit("|---|---:|---:|---:|---:|")
    for size in (small_mb, large_mb):
        with tempfile.TemporaryDirectory() as staged:
            run_child("stage", files[size], staged)
            date = run_child("date", staged)
        figures = f"{date['rows']:,} | {date['groups']:,} | {date['seconds']:.2f} | {date['peak_rss_mb']:.0f}"
        emit(f"| {size:g} MB file | {figures} |")
    emit()
    date_items(files[large_mb], args.date_items, emit)
    emit()

    emit("| duplicate step, one id partition | chunks | seconds | peak RSS MB |")
    emit("|---|---:|---:|---:|")
    for occurrences in (1_000_000, 4_000_000):
        result = run_child("dedupe", occurrences, 16)
        emit(f"| {occurrences:,} occurrences | 16 | {result['seconds']:.2f} | {result['peak_rss_mb']:.0f} |")
    emit()

    reports = {n: os.path.join(work, f"report-jobs{n}.json") for n in (1, 2)}
    pairs, identical = [], True
    for first in (1, 2):  # each order once, so the machine's drift falls on both
        seconds = {n: timed_cli(files[jobs_mb], n, reports[n], chunk_bytes) for n in (first, 3 - first)}
        pairs.append((seconds[1], seconds[2]))
        identical = identical and Path(reports[1]).read_bytes() == Path(reports[2]).read_bytes()
    one, two = (sum(pair[k] for pair in pairs) / len(pairs) for k in (0, 1))
    emit(f"| `pipeline validate` on the {jobs_mb:g} MB file, mean of {len(pairs)} pairs | seconds | MB/s |")
    emit("|---|---:|---:|")
    emit(f"| `--jobs 1` | {one:.1f} | {jobs_mb / one:.1f} |")
    emit(f"| `--jobs 2` | {two:.1f} | {jobs_mb / two:.1f} |")
    speedups = ", ".join(f"{a / b:.2f}x" for a, b in pairs)
    emit(f"| speed-up | {one / two:.2f}x (pairs: {speedups}) | reports identical: {'yes' if identical else 'NO'} |")
    emit()

    # A 500 GB day, in chunks of CHUNK_BYTES: each validated and transformed by the functions'
    # memory (1,769 MB is one vCPU, assumed as fast as one core here), plus plan's scan.
    chunks = DAY_BYTES / (chunk_mb * 1_000_000)
    chunk_seconds = both["seconds"]
    validate_seconds, transform_seconds = validate["seconds"], transform["seconds"]
    plan_seconds = DAY_BYTES / (large_mb * 1_000_000 / planned["seconds"])
    gb_seconds = (
        chunks * validate_seconds * FUNCTIONS["validate"].memory_mb
        + chunks * transform_seconds * FUNCTIONS["transform"].memory_mb
        + plan_seconds * FUNCTIONS["plan"].memory_mb
    ) / 1024
    day_cost = gb_seconds * ARM64_GB_SECOND + chunks * 4 * REQUEST  # validate, dedupe, transform, Map child
    emit("| a 500 GB day (model from the figures above) | value |")
    emit("|---|---:|")
    emit(f"| chunks of {args.chunk_mib} MiB | {chunks:,.0f} |")
    emit(f"| chunk-seconds (validate + transform) | {chunks * chunk_seconds:,.0f} |")
    plan_mb = FUNCTIONS["plan"].memory_mb
    emit(f"| plan's scan of the day's files ({plan_mb:,} MB functions, one per job) | {plan_seconds:,.0f} s |")
    running = PipelineConfig().throughput.max_running_jobs
    for concurrency in (10, 40, 100):
        # An upper bound: the plans (MAX_RUNNING_JOBS at a time) are not overlapped with other jobs' chunks.
        hours = (chunks * chunk_seconds / concurrency + plan_seconds / running) / 3600
        emit(f"| wall clock at {concurrency} chunks in flight | {hours:.2f} h |")
    emit(f"| Lambda GB-seconds a day | {gb_seconds:,.0f} |")
    monthly = day_cost * 30
    emit(f"| Lambda cost a day / a 30-day month (arm64, ${ARM64_GB_SECOND}/GB-s) | ${day_cost:.2f} / ${monthly:.0f} |")
    emit(f"| the original estimate's Lambda line | ${SEED_LAMBDA_MONTH:.0f} a month |")
    publish("\n".join(out), args.markdown_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
