"""A job's validation on one machine, through the very plan and steps the state machine runs:
the plan, every chunk on a pool of processes, the duplicate step per id partition, the second
pass of the chunks holding late duplicates, and the merged summary.

``pipeline validate --jobs N`` runs this; so does the property test that any chunking gives the
result of one chunk.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

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
    """Bytes [start, end) of a local file, read like an S3 ranged GET's body; each read added to
    ``counter`` (a shared ``multiprocessing.Value``) when one is given."""

    def __init__(self, path: str, start: int, end: int, *, counter: Any = None) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._file.seek(start)
        self._left = end - start
        self._counter = counter

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._left -= len(data)
        if self._counter is not None:  # once per buffered read (1 MB): a lock taken, nothing measurable
            with self._counter.get_lock():
                self._counter.value += len(data)
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


# In a process validating chunks for a caller that follows the progress: the count of bytes its
# chunks' first pass has read, shared with the caller (set once per process by _count_reads).
_reads: Any = None


def _count_reads(counter: Any) -> None:
    global _reads
    _reads = counter


def _validate(job: _Job, chunk: Chunk, first_record: bool, late: list[int] | None = None) -> ChunkResult:
    reader = RangeReader(job.path, chunk.start, chunk.end, counter=None if late else _reads)
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


CHUNKS = "chunks"  # the plan's scan and every chunk's first pass, side by side
DUPLICATES = "duplicates"  # then the duplicate step across chunks and the second pass of the chunks it names
PROGRESS_SECONDS = 0.1  # the callback is told at most this often while the work goes on (and once at each step's end)


@dataclass(frozen=True, kw_only=True)
class Progress:
    """How far ``validate_file`` is, told to its ``progress`` callback in the calling process."""

    step: str  # CHUNKS, then DUPLICATES (a plan of several chunks only)
    total_bytes: int
    scanned_bytes: int  # read by the plan so far
    validated_bytes: int  # read by the chunks' first pass so far, counting the bytes before the first (a header)
    chunks_done: int
    chunks_known: int  # closed by the plan so far: every chunk once ``planned``
    planned: bool
    rows: int  # records of the chunks done


ProgressCallback = Callable[[Progress], None]


def validate_file(
    *,
    path: str,
    fmt: str,
    directory: str,
    chunk_bytes: int = CHUNK_BYTES,
    jobs: int = 1,
    partition_records: int = DEDUP_PARTITION_RECORDS,
    stage_valid: bool = True,
    progress: ProgressCallback | None = None,
) -> JobResult:
    """Validate the file at ``path`` in chunks of ``chunk_bytes`` on ``jobs`` processes, keeping
    each chunk's outputs under ``directory`` (the valid rows' date parts only with ``stage_valid``).
    ``progress``, if given, is called in this process (this thread) as the work goes on; without
    it nothing is counted."""
    reads = multiprocessing.get_context("spawn").Value("q", 0) if progress is not None else None
    with _executor(jobs, reads=reads) as pool:
        for _ in range(jobs if jobs > 1 else 0):  # the processes start (and import) while this one plans
            pool.submit(int)
        planner = Planner(fmt=fmt, chunk_bytes=chunk_bytes, digest=False)
        tracker = None
        if progress is not None:
            tracker = _Tracker(progress, planner=planner, reads=reads, total_bytes=os.path.getsize(path))
        launcher = _Launcher(
            pool,
            path=path,
            fmt=fmt,
            directory=directory,
            stage_valid=stage_valid,
            jobs=jobs,
            partition_records=partition_records,
            on_submit=tracker.watch if tracker is not None else None,
        )
        for block in file_blocks(path):
            planner.feed(block)
            if tracker is not None:
                tracker.scanned(len(block))
            launcher.submit(planner)
        plan = planner.finish()
        launcher.submit(planner, last=True)
        results = tracker.results() if tracker is not None else [future.result() for future in launcher.futures]
        job = launcher.job
        late: dict[int, list[int]] = {}
        shards = [
            [(r.chunk, r.keys[partition][0]) for r in results if partition in r.keys]
            for partition in range(job.partitions if len(results) > 1 else 0)
        ]
        if tracker is not None and shards:
            tracker.tell(step=DUPLICATES)
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


class _Tracker:
    """What the pool has done, for a ``progress`` callback: each chunk's rows as its future completes
    (in whichever thread completes it: hence the lock), and the bytes the processes have read so far
    from a counter they share (a chunk of 128 MB would otherwise show nothing for seconds). The
    callback is called from the thread that runs ``validate_file`` only: when a chunk is done, and
    at most every PROGRESS_SECONDS besides."""

    def __init__(self, callback: ProgressCallback, *, planner: Planner, reads: Any, total_bytes: int) -> None:
        self._callback, self._planner, self._reads, self._total = callback, planner, reads, total_bytes
        self._futures: list[Future] = []
        self._planned = False
        self._step = CHUNKS
        self._scanned = 0
        self._lock = threading.Lock()
        self._chunks_done = 0
        self._rows = 0
        self._told_at = -math.inf
        self._told_chunks = 0

    def scanned(self, size: int) -> None:
        self._scanned += size
        self.tell()

    def watch(self, future: Future) -> None:
        """A chunk's future, just submitted (done already when this process validates it)."""
        self._futures.append(future)
        future.add_done_callback(self._done)
        self.tell()

    def results(self) -> list[ChunkResult]:
        """Every chunk's result, in chunk order, telling the callback while they are awaited (the
        plan is finished: every chunk is known)."""
        self._planned = True
        for future in self._futures:
            while not future.done():
                wait([future], timeout=PROGRESS_SECONDS)
                self.tell()
        self.tell(step=CHUNKS)
        return [future.result() for future in self._futures]

    def tell(self, *, step: str | None = None) -> None:
        """Call the callback if ``step`` begins, a chunk was done since the last call, or that call is
        PROGRESS_SECONDS old."""
        with self._lock:
            chunks_done, rows = self._chunks_done, self._rows
        now = time.monotonic()
        if step is None and chunks_done == self._told_chunks and now - self._told_at < PROGRESS_SECONDS:
            return
        self._told_at, self._told_chunks, self._step = now, chunks_done, step or self._step
        self._callback(
            Progress(
                step=self._step,
                total_bytes=self._total,
                scanned_bytes=self._scanned,
                validated_bytes=(self._planner.data_start or 0) + self._reads.value,
                chunks_done=chunks_done,
                chunks_known=len(self._planner.chunks),
                planned=self._planned,
                rows=rows,
            )
        )

    def _done(self, future: Future) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # its error is raised by results()
        records = future.result().summary.records
        with self._lock:
            self._chunks_done += 1
            self._rows += records


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
        on_submit: Callable[[Future], None] | None = None,
    ) -> None:
        self._pool = pool
        self._on_submit = on_submit
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
            if self._on_submit is not None:
                self._on_submit(self.futures[-1])

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


@contextlib.contextmanager
def _executor(jobs: int, *, reads: Any = None) -> Iterator[Executor]:
    """A pool of ``jobs`` processes, or this process for one; its chunks count their reads into
    ``reads`` when it is given."""
    if jobs <= 1:
        previous = _reads
        _count_reads(reads)
        try:
            with _InProcess() as pool:
                yield pool
        finally:
            _count_reads(previous)
        return
    # spawn, not fork: pyarrow's thread pools do not survive a fork
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_count_reads if reads is not None else None,
        initargs=(reads,),
    ) as pool:
        yield pool
