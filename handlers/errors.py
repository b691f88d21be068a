"""Exceptions the stages raise. Step Functions sees the class name as the error name."""


class PipelineError(Exception):
    """Base class of the pipeline's own, non-transient errors."""


class InvalidInputError(PipelineError):
    """The state input (or a CLI argument) is not usable."""


class UnreadableFileError(PipelineError):
    """The file cannot be read at all: not UTF-8, no header, empty."""


class JobConflictError(PipelineError):
    """The jobId is already registered with other content, or owned by another run."""


class JobInProgressError(JobConflictError):
    """Another execution is processing this jobId right now."""


class JobNotFoundError(PipelineError):
    """A stage ran for a jobId that ingest never registered."""


class JobStateError(PipelineError):
    """A stage ran while the job was in a status that does not allow it."""


class SourceChangedError(PipelineError):
    """The source object changed after ingest registered it."""


class ReconciliationError(PipelineError):
    """Counts or control totals do not reconcile between stages."""
