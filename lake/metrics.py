"""The business metrics the handlers emit and the orchestration layer alarms on and charts."""

NAMESPACE = "FinancialPipeline"
SERVICE = "financial-pipeline"

ROWS_RECEIVED = "RowsReceived"
ROWS_LOADED = "RowsLoaded"
ROWS_REJECTED = "RowsRejected"
REJECT_RATE = "RejectRatePercent"
BYTES_PROCESSED = "BytesProcessed"
JOB_DURATION = "JobDurationSeconds"
JOBS_LOADED = "JobsLoaded"
JOBS_REJECTED = "JobsRejected"
JOBS_FAILED = "JobsFailed"
# A file whose bytes another job already holds (loaded or in progress): recorded RESENT, not a failure.
JOBS_RESENT = "JobsResent"
RECONCILIATION_FAILURES = "ReconciliationFailures"
# Transaction ids of a closed booking date that two or more jobs loaded (the duplicate audit's
# Athena query, pipeline_constructs/audit.py): a re-send nobody declared as a correction.
DUPLICATE_TRANSACTIONS = "DuplicateTransactions"
