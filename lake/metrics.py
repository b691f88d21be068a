"""The business metrics the handlers emit and the orchestration layer alarms on and charts."""

NAMESPACE = "FinancialPipeline"
SERVICE = "financial-pipeline"
DIMENSIONS = ("service", "environment")

ROWS_RECEIVED = "RowsReceived"
ROWS_LOADED = "RowsLoaded"
ROWS_REJECTED = "RowsRejected"
REJECT_RATE = "RejectRatePercent"
BYTES_PROCESSED = "BytesProcessed"
JOB_DURATION = "JobDurationSeconds"
JOBS_LOADED = "JobsLoaded"
JOBS_REJECTED = "JobsRejected"
JOBS_FAILED = "JobsFailed"
RECONCILIATION_FAILURES = "ReconciliationFailures"
