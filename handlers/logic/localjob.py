"""A job's validation on one machine, through the very plan and steps the state machine runs:
the plan, every chunk on a pool of processes, the duplicate step per id partition, the second
pass of the chunks holding late duplicates, and the merged summary.

``pipeline validate --jobs N`` runs this; so does the property test that any chunking gives the
result of one chunk.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from handlers.logic.chunkwork import ChunkResult, merge_summaries, read_keys, validate_chunk
from handlers.logic.dedupe import late_occurrences
from handlers.logic.idkeys import IdKeys, new_seed
from handlers.logic.planning import SCAN_BLOCK_BYTES, Chunk, Planner, SourcePlan
from handlers.logic.recorder import ValidationSummary
from handlers.logic.streams import CountingReader
from handlers.logic.validation import JSONL_FORMAT
from lake.defaults import CHUNK_BYTES, DEDUP_PARTITION_RECORDS


class RangeReader:
    """Bytes [start, end) of a local file, read like an S3 ranged GET's body."""

    def __init__(self, path: str, start: int, end: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._file.seek(start)
        self._left = end - start

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


def file_blocks(path: str, block: int | None = None) -> Iterator[bytes]:
    size = block or SCAN_BLOCK_BYTES  # looked up here, so a test can plan in small blocks
    with open(path, "rb") as source:
        yield from iter(lambda: source.read(size), b"")


@dataclass(frozen=True)
class _Job:
    path: str
    fmt: str
    header: list[str] | None
    seed: str
    partitions: int
    directory: str
    stage_valid: bool  # keep the valid rows' date parts (a check that only reports does not)


def _validate(job: _Job, chunk: Chunk, first_record: bool, late: list[int] | None = None) -> ChunkResult:
    reader = RangeReader(job.path, chunk.start, chunk.end)
    try:
        suffix = "-late" if late else ""
        return validate_chunk(
            raw=CountingReader(reader),
            fmt=job.fmt,
            header=job.header,
            chunk=chunk,
            keys=IdKeys(job.seed),
            partitions=job.partitions,
            directory=os.path.join(job.directory, f"chunk-{chunk.index:06d}{suffix}"),
            first_record=first_record,
            late_duplicates=np.array(late, dtype=np.int64) if late else None,
            stage_valid=job.stage_valid,
        )
    finally:
        reader.close()


def _late_in_partition(shards: list[tuple[int, str]]) -> dict[int, list[int]]:
    """Lines, per chunk, of the occurrences of one id partition that repeat an earlier chunk's."""
    return late_occurrences([(chunk, read_keys(path)) for chunk, path in shards])


@dataclass
class JobResult:
    plan: SourcePlan
    summary: ValidationSummary
    chunks: list[ChunkResult]  # final, in chunk order

    def rejects(self) -> Iterator[dict]:
        """Every rejected row, in line order."""
        for result in self.chunks:
            with open(result.quarantine_path, encoding="utf-8") as quarantine:
                for line in quarantine:
                    yield json.loads(line)


def validate_file(
    *,
    path: str,
    fmt: str,
    directory: str,
    chunk_bytes: int = CHUNK_BYTES,
    jobs: int = 1,
    partition_records: int = DEDUP_PARTITION_RECORDS,
    stage_valid: bool = True,
) -> JobResult:
    """Validate the file at ``path`` in chunks of ``chunk_bytes`` on ``jobs`` processes, keeping
    each chunk's outputs under ``directory`` (the valid rows' date parts only with ``stage_valid``)."""
    with _executor(jobs) as pool:
        for _ in range(jobs if jobs > 1 else 0):  # the processes start (and import) while this one plans
            pool.submit(int)
        launcher = _Launcher(
            pool,
            path=path,
            fmt=fmt,
            directory=directory,
            stage_valid=stage_valid,
            jobs=jobs,
            partition_records=partition_records,
        )
        planner = Planner(fmt=fmt, chunk_bytes=chunk_bytes, digest=False)
        for block in file_blocks(path):
            planner.feed(block)
            launcher.submit(planner)
        plan = planner.finish()
        launcher.submit(planner, last=True)
        results = [future.result() for future in launcher.futures]
        job = launcher.job
        late: dict[int, list[int]] = {}
        shards = [
            [(r.chunk, r.keys[partition][0]) for r in results if partition in r.keys]
            for partition in range(job.partitions if len(results) > 1 else 0)
        ]
        for found in pool.map(_late_in_partition, shards):  # the duplicate step, a partition at a time
            for chunk, lines in found.items():
                late.setdefault(chunk, []).extend(lines)
        again = sorted(late)
        for result in pool.map(
            _validate,
            [job] * len(again),
            [plan.chunks[c] for c in again],
            [c == launcher.first_record for c in again],
            [sorted(late[c]) for c in again],
        ):
            results[result.chunk] = result
    summary = merge_summaries([r.summary_document() for r in results])
    summary.format = fmt
    return JobResult(plan=plan, summary=summary, chunks=results)


class _Launcher:
    """Hands each chunk to the pool as soon as the plan has closed it: the processes validate while
    the rest of the file is still being scanned."""

    def __init__(
        self,
        pool: Executor,
        *,
        path: str,
        fmt: str,
        directory: str,
        stage_valid: bool,
        jobs: int,
        partition_records: int,
    ) -> None:
        self._pool = pool
        self._path, self._fmt, self._directory, self._stage_valid = path, fmt, directory, stage_valid
        self._jobs, self._partition_records = max(1, jobs), partition_records
        self._size = os.path.getsize(path)
        self.job: _Job | None = None
        self.futures: list[Future] = []
        self.first_record: int | None = None  # the chunk holding the file's first record (JSON Lines)

    def submit(self, planner: Planner, *, last: bool = False) -> None:
        for chunk in planner.chunks[len(self.futures) :]:
            if self.job is None:
                self.job = self._job(planner, chunk, last=last)
            if self.first_record is None and (chunk.records or self._fmt != JSONL_FORMAT):
                self.first_record = chunk.index
            self.futures.append(self._pool.submit(_validate, self.job, chunk, chunk.index == self.first_record))

    def _job(self, planner: Planner, first: Chunk, *, last: bool) -> _Job:
        if last:  # the plan closed its first chunk only at the end: the file is one chunk
            partitions = 1
        else:
            # The plan has not counted the file's records yet: twice the first chunk's records per
            # byte estimates them. No partition far above partition_records, and a multiple of the
            # processes, so that they finish together.
            per_byte = first.records / max(1, first.end - planner.data_start)
            estimate = 2 * per_byte * (self._size - planner.data_start)
            needed = max(1, math.ceil(estimate / self._partition_records))
            partitions = self._jobs * math.ceil(needed / self._jobs)
        return _Job(self._path, self._fmt, planner.header, new_seed(), partitions, self._directory, self._stage_valid)


class _InProcess(Executor):
    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - kept for result(), as a pool would
            future.set_exception(error)
        return future

    def map(self, fn, *iterables, timeout=None, chunksize=1):  # noqa: ARG002 - Executor's signature
        return map(fn, *iterables)


def _executor(jobs: int) -> Executor:
    if jobs <= 1:
        return _InProcess()
    # spawn, not fork: pyarrow's thread pools do not survive a fork
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
