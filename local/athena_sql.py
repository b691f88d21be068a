"""Athena that runs SQL: StartQueryExecution, GetQueryExecution, GetQueryResults,
StopQueryExecution and BatchGetQueryExecution over the emulator's Glue Data Catalog, with DuckDB
as the engine (moto 5.2.5 runs nothing: every query "succeeds" with no rows).

What a query sees. Each Iceberg table the query names (Glue Parameters table_type ICEBERG and
metadata_location) is read with pyiceberg at the snapshot asked for, the current one by default,
and handed to DuckDB under its Glue database and name, so `"db"."table"`, `db.table` and, with
QueryExecutionContext.Database (default "default"), `table` all resolve; an `awsdatacatalog.`
prefix is dropped. As in Athena engine version 3 (Trino):
  * `FOR VERSION AS OF <snapshot id>` and `FOR TIMESTAMP AS OF <expression>` (also the
    `FOR SYSTEM_VERSION` / `FOR SYSTEM_TIME` spelling) scan that snapshot: for a time, the one
    that was current then (the table's snapshot log); none is an error naming the table.
    https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-time-travel-and-version-travel-queries.html
  * `"table$snapshots"`, `$history`, `$files`, `$manifests`, `$partitions`, `$refs` are
    pyiceberg's inspect tables, whose columns are Trino's for $snapshots (committed_at,
    snapshot_id, parent_id, operation, manifest_list, summary) and $history (made_current_at,
    snapshot_id, parent_id, is_current_ancestor).
    https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-table-metadata.html
A table that is not Iceberg (the Hive tables with partition projection) is not read here: the
query fails naming it. Reads of data go through the emulator's own S3 with the deployer's key,
so the caller's IAM policy is not checked on the data, only on StartQueryExecution.

The engine is DuckDB, not Trino: the SQL the docs and the audit use (SELECT, WITH, joins,
GROUP BY, window functions, `sum` of DECIMAL, date and timestamp literals) is common to both;
functions only Trino has fail with DuckDB's message. Where the two differ in result type,
DuckDB's avg of a DECIMAL is a double (Trino: a decimal), and its sum of integers a HUGEINT
(answered as bigint).

Results as Athena gives them. The CSV goes to the output location (ResultConfiguration's, or
the workgroup's when it enforces its configuration or the request has none; neither is an
InvalidRequestException) as <QueryExecutionId>.csv: a header row, every value in double quotes,
NULL as an empty field. GetQueryResults pages up to 1,000 rows, the first row the column names,
ResultSetMetadata.ColumnInfo with Athena's type names (decimal with Precision and Scale);
values are VarCharValue strings, a DECIMAL with its scale ("12.3400"), NULL an empty Datum.
A query that fails ends FAILED with StateChangeReason and AthenaError (category 2, user, for
errors in the query), never a 500. Queries run in a thread each: QUEUED, RUNNING, then
SUCCEEDED, FAILED or CANCELLED (StopQueryExecution). Not enforced: the workgroup's
BytesScannedCutoffPerQuery (DataScannedInBytes is reported: the data files' sizes).
https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryResults.html
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger("local.athena")
MAX_RESULTS = 1000  # GetQueryResults' MaxResults limit
DEFAULT_DATABASE = "default"
METADATA_TABLES = {
    "snapshots": "snapshots",
    "history": "history",
    "files": "files",
    "manifests": "manifests",
    "partitions": "partitions",
    "refs": "refs",
}
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
_NOT_QUERIES = {
    "ALTER",
    "CREATE",
    "DELETE",
    "DESCRIBE",
    "DROP",
    "EXPLAIN",
    "INSERT",
    "MERGE",
    "MSCK",
    "OPTIMIZE",
    "SHOW",
    "UNLOAD",
    "UPDATE",
    "VACUUM",
}
_NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
_TABLE_REF = rf"(?P<ref>{_NAME}(?:\s*\.\s*{_NAME}){{0,2}})"
_TRAVEL = re.compile(
    _TABLE_REF + r"\s+FOR\s+(?:SYSTEM_)?(?P<kind>VERSION|TIMESTAMP|TIME)\s+AS\s+OF\s+",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(
    r"(WHERE|GROUP|ORDER|LIMIT|JOIN|LEFT|RIGHT|INNER|FULL|CROSS|UNION|EXCEPT|INTERSECT|HAVING|ON|AS|"
    r"WINDOW|OFFSET|FETCH|USING)\b",
    re.IGNORECASE,
)
_CATALOG_PREFIX = re.compile(r'(?<![\w."])(?:"awsdatacatalog"|awsdatacatalog)\s*\.\s*', re.IGNORECASE)


class QueryError(Exception):
    """A query Athena would fail: the reason becomes StateChangeReason."""


@dataclass
class Run:
    """One query's engine-side state, beside moto's Execution (which ListQueryExecutions lists)."""

    state: str = "QUEUED"
    reason: str | None = None
    category: int | None = None
    submitted: float = field(default_factory=time.time)
    completed: float | None = None
    columns: list[dict] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    scanned: int = 0
    engine_ms: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, state: str, reason: str | None = None, category: int | None = None) -> None:
        with self.lock:
            if self.state in _TERMINAL:
                return
            self.state, self.reason, self.category = state, reason, category
            self.completed = time.time()


# ------------------------------------------------------------------ reading the catalog
def _io_properties() -> dict[str, str]:
    url = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}"
    return {
        "s3.endpoint": url,
        "s3.access-key-id": "test",
        "s3.secret-access-key": "test",
        "s3.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
    }


def _unquote(name: str) -> str:
    # Athena folds every identifier to lower case, quoted or not, as Glue stores its names.
    name = name.strip()
    return (name[1:-1].replace('""', '"') if name.startswith('"') else name).lower()


class Catalog:
    """The Glue tables of one account and region, read as Iceberg tables at a snapshot."""

    def __init__(self, account: str, region: str, default_database: str) -> None:
        from moto.glue.models import glue_backends

        self.glue = glue_backends[account][region]
        self.region = region
        self.default_database = default_database
        self.scanned = 0
        self._tables: dict[tuple[str, str], Any] = {}

    def iceberg(self, database: str, name: str) -> Any:
        key = (database, name)
        if key not in self._tables:
            from pyiceberg.table import StaticTable

            db = self.glue.databases.get(database)
            if db is None:
                raise QueryError(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")
            glue_table = db.tables.get(name)
            if glue_table is None:
                raise QueryError(f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{database}.{name}' does not exist")
            parameters = glue_table.as_dict().get("Parameters") or {}
            location = parameters.get("metadata_location")
            if str(parameters.get("table_type", "")).upper() != "ICEBERG" or not location:
                raise QueryError(
                    f"NOT_SUPPORTED: Table '{database}.{name}' is not an Iceberg table: the local Athena reads "
                    "Iceberg tables only (Glue Parameters table_type ICEBERG with a metadata_location)"
                )
            properties = {**_io_properties(), "s3.region": self.region}
            self._tables[key] = StaticTable.from_metadata(location, properties=properties)
        return self._tables[key]

    def exists(self, database: str, name: str) -> bool:
        db = self.glue.databases.get(database)
        return db is not None and name.split("$")[0].split("@")[0] in db.tables

    def arrow(self, database: str, name: str, travel: tuple[str, Any] | None) -> Any:
        """The Arrow table a reference stands for: data at a snapshot, or a metadata table."""
        base, _, meta = name.partition("$")
        table = self.iceberg(database, base)
        if meta:
            if meta not in METADATA_TABLES:
                raise QueryError(f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{database}.{name}' does not exist")
            return _utc_timestamps(getattr(table.inspect, METADATA_TABLES[meta])())
        snapshot = table.current_snapshot()
        if travel is not None:
            kind, value = travel
            if kind == "version":
                snapshot = table.snapshot_by_id(value)
                if snapshot is None:
                    raise QueryError(f"INVALID_ARGUMENTS: Iceberg snapshot ID does not exists: {value}")
            else:
                snapshot = table.snapshot_as_of_timestamp(value)
                if snapshot is None:
                    when = dt.datetime.fromtimestamp(value / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
                    raise QueryError(
                        f"INVALID_ARGUMENTS: No version history table '{database}.{base}' at or before {when} UTC"
                    )
        if snapshot is None:  # a table with no commit yet: its columns, no rows
            from pyiceberg.io.pyarrow import schema_to_pyarrow

            return schema_to_pyarrow(table.schema()).empty_table()
        scan = table.scan(snapshot_id=snapshot.snapshot_id)
        self.scanned += sum(task.file.file_size_in_bytes for task in scan.plan_files())
        return scan.to_arrow()


def _utc_timestamps(data: Any) -> Any:
    """pyiceberg's inspect tables give committed_at and made_current_at as naive UTC
    timestamps; Trino's are timestamp(3) with time zone, shown as '... UTC'."""
    import pyarrow as pa

    fields = [
        pa.field(f.name, pa.timestamp("ms", tz="UTC"), f.nullable) if pa.types.is_timestamp(f.type) else f
        for f in data.schema
    ]
    return data.cast(pa.schema(fields))


# ------------------------------------------------------------------ the query
def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split_ref(ref: str, default_database: str) -> tuple[str, str]:
    parts = [_unquote(p) for p in re.findall(_NAME, ref)]
    if len(parts) == 3:
        parts = parts[1:]
    return (parts[0], parts[1]) if len(parts) == 2 else (default_database, parts[0])


def _travel_expression(sql: str, start: int) -> tuple[str, int]:
    """The expression after AS OF, up to the clause that follows it at the same depth."""
    literal = re.compile(r"TIMESTAMP\s*'[^']*'", re.IGNORECASE).match(sql, start)
    if literal:
        return literal.group(0), literal.end()
    depth, i, quote = 0, start, None
    while i < len(sql):
        char = sql[i]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (char in ",;" or (_CLAUSE_END.match(sql, i) and not sql[i - 1 : i].isalnum())):
            break
        i += 1
    return sql[start:i].strip(), i


def _rewrite_travel(sql: str, con: Any, default_database: str) -> tuple[str, dict[tuple[str, str], tuple]]:
    """`ref FOR VERSION|TIMESTAMP AS OF x` -> a reference to a table of its own, and what it reads."""
    travels: dict[tuple[str, str], tuple] = {}
    out, pos = [], 0
    for match in _TRAVEL.finditer(sql):
        if match.start() < pos:
            continue
        database, name = _split_ref(match.group("ref"), default_database)
        if match.group("kind").upper() == "VERSION":
            number = re.compile(r"\s*(-?\d+)").match(sql, match.end())
            if not number:
                raise QueryError("line 1:1: FOR VERSION AS OF takes a snapshot id (a bigint)")
            value, end = ("version", int(number.group(1))), number.end()
        else:
            expression, end = _travel_expression(sql, match.end())
            expression = re.sub(r"^TIMESTAMP\s*'", "TIMESTAMPTZ '", expression, flags=re.IGNORECASE)
            try:
                millis = con.execute(f"SELECT epoch_ms(CAST(({expression}) AS TIMESTAMPTZ))").fetchone()[0]
            except Exception as error:  # noqa: BLE001 - the query's own error
                raise QueryError(f"INVALID_ARGUMENTS: FOR TIMESTAMP AS OF {expression}: {error}") from None
            value = ("timestamp", int(millis))
        alias = f"{name}@{value[0]}={value[1]}"
        travels[(database, alias)] = value
        out.append(sql[pos : match.start()])
        out.append(f"{_quoted(database)}.{_quoted(alias)} ")
        pos = end
    out.append(sql[pos:])
    return "".join(out), travels


def _references(con: Any, sql: str, default_database: str) -> list[tuple[str, str]]:
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        message = tree.get("error_message", "syntax error")
        raise QueryError(f"SYNTAX_ERROR: {message}")
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                schema = (node.get("schema_name") or default_database).lower()
                found.append((schema, (node.get("table_name") or "").lower()))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return found


def execute(sql: str, catalog: Catalog) -> tuple[list[dict], list[list[str | None]]]:
    """Run one statement; (ColumnInfo, rows as Athena's strings)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # Athena's session time zone
        statement = _CATALOG_PREFIX.sub("", sql.strip().rstrip(";"))
        verb = statement.split(None, 1)[0].upper() if statement else ""
        if verb in _NOT_QUERIES:
            raise QueryError(f"NOT_SUPPORTED: the local Athena runs queries (SELECT, WITH), not {verb}")
        statement, travels = _rewrite_travel(statement, con, catalog.default_database)
        schemas: set[str] = set()
        views: list[str] = []
        for database, name in _references(con, statement, catalog.default_database):
            if (database, name) in travels:
                data = catalog.arrow(database, name.split("@")[0], travels[(database, name)])
            elif catalog.exists(database, name):
                data = catalog.arrow(database, name, None)
            else:
                continue  # a CTE's name, or a table DuckDB reports as missing below
            if database not in schemas:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(database)}")
                schemas.add(database)
            view = f"_arrow_{len(views)}"
            views.append(view)
            con.register(view, data)
            # The names are Glue's, quoted; the statement itself is the caller's SQL in any case.
            con.execute(f"CREATE OR REPLACE VIEW {_quoted(database)}.{_quoted(name)} AS SELECT * FROM {view}")  # noqa: S608
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(catalog.default_database)}")
        con.execute(f"USE {_quoted(catalog.default_database)}")
        try:
            cursor = con.execute(statement)
        except duckdb.CatalogException as error:
            raise QueryError(f"TABLE_NOT_FOUND: {error}") from None
        except duckdb.BinderException as error:
            raise QueryError(f"COLUMN_NOT_FOUND: {error}") from None
        except duckdb.ParserException as error:
            raise QueryError(f"SYNTAX_ERROR: {error}") from None
        except duckdb.Error as error:
            raise QueryError(f"{type(error).__name__}: {error}") from None
        description, values = cursor.description, cursor.fetchall()  # before the connection runs more
        names = _athena_names(con, statement, [d[0] for d in description])
        columns = [column_info(name, d[1]) for name, d in zip(names, description, strict=True)]
        # Trino shows a timestamp with its type's precision: Iceberg's timestamp(6), the metadata
        # tables' timestamp(3) with time zone. A column of whole milliseconds is shown with 3 digits.
        millis = [
            all(not isinstance(row[i], dt.datetime) or row[i].microsecond % 1000 == 0 for row in values)
            for i in range(len(description))
        ]
        rows = [[varchar(value, millis[i]) for i, value in enumerate(row)] for row in values]
        return columns, rows
    finally:
        con.close()


def _athena_names(con: Any, statement: str, names: list[str]) -> list[str]:
    """Athena names an output column by its alias or column, and any other expression _col<i>
    (its position); DuckDB names it by its text (count_star())."""
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [statement]).fetchone()[0])
    node = (tree.get("statements") or [{}])[0].get("node") or {}
    select = node.get("select_list") or []
    if (
        node.get("type") != "SELECT_NODE"
        or len(select) != len(names)
        or any("STAR" in e.get("class", "") for e in select)
    ):
        return names
    return [
        name if expression.get("alias") or expression.get("class") == "COLUMN_REF" else f"_col{i}"
        for i, (name, expression) in enumerate(zip(names, select, strict=True))
    ]


# ------------------------------------------------------------------ Athena's shapes
_TYPES = {
    "VARCHAR": ("varchar", 2147483647),
    "BIGINT": ("bigint", 19),
    "HUGEINT": ("bigint", 19),
    "UBIGINT": ("bigint", 19),
    "INTEGER": ("integer", 10),
    "UINTEGER": ("bigint", 19),
    "SMALLINT": ("smallint", 5),
    "TINYINT": ("tinyint", 3),
    "DOUBLE": ("double", 17),
    "FLOAT": ("float", 7),
    "BOOLEAN": ("boolean", 0),
    "DATE": ("date", 0),
    "TIME": ("time", 0),
    "TIMESTAMP": ("timestamp", 3),
    "TIMESTAMP_NS": ("timestamp", 3),
    "TIMESTAMP_MS": ("timestamp", 3),
    "TIMESTAMP_S": ("timestamp", 3),
    "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 3),
    "BLOB": ("varbinary", 2147483647),
    "UUID": ("uuid", 0),
}


def column_info(name: str, duck_type: Any) -> dict:
    text = str(duck_type).upper()
    precision, scale = 0, 0
    decimal_type = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", text)
    if decimal_type:
        athena, precision, scale = "decimal", int(decimal_type.group(1)), int(decimal_type.group(2))
    elif text.endswith("[]"):
        athena = "array"
    elif text.startswith("MAP("):
        athena = "map"
    elif text.startswith("STRUCT("):
        athena = "row"
    else:
        athena, precision = _TYPES.get(text, ("varchar", 2147483647))
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena,
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": athena == "varchar",
    }


def varchar(value: Any, millis: bool = False) -> str | None:
    """A value as Athena's VarCharValue (None: the Datum has none); millis: a timestamp's
    fraction in 3 digits, not 6."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # keeps the column's scale: 12.3400
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        zone = " UTC" if value.tzinfo is not None else ""
        text = (value.astimezone(dt.UTC) if zone else value).strftime("%Y-%m-%d %H:%M:%S.%f")
        return (text[:-3] if millis else text) + zone
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return " ".join(f"{b:02x}" for b in value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join("null" if v is None else varchar(v) for v in value) + "]"
    if isinstance(value, dict):
        if set(value) == {"key", "value"} and isinstance(value["key"], list):  # a DuckDB MAP
            value = dict(zip(value["key"], value["value"], strict=True))
        return "{" + ", ".join(f"{varchar(k)}={'null' if v is None else varchar(v)}" for k, v in value.items()) + "}"
    return str(value)


def csv_text(columns: list[dict], rows: list[list[str | None]]) -> str:
    def line(values: list[str | None]) -> str:
        return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values)

    return "".join(line(r) + "\n" for r in [[c["Name"] for c in columns], *rows])


# ------------------------------------------------------------------ the API
def _runs(backend: Any) -> dict[str, Run]:
    if not hasattr(backend, "sql_runs"):
        backend.sql_runs = {}
    return backend.sql_runs


def _invalid(message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("InvalidRequestException", message)


def _output_location(workgroup: Any, requested: dict | None) -> dict:
    """ResultConfiguration in force: the workgroup's when it enforces it, else the request's over it."""
    configuration = workgroup.configuration if workgroup is not None else {}
    own = dict(configuration.get("ResultConfiguration") or {})
    requested = dict(requested or {})
    if configuration.get("EnforceWorkGroupConfiguration", True) and own.get("OutputLocation"):
        result = own
    else:
        result = {**own, **requested}
    if not result.get("OutputLocation"):
        raise _invalid(
            "No output location provided. An output location is required either through the Workgroup "
            "result configuration setting or as an API input."
        )
    return result


def _run(backend: Any, execution: Any, run: Run) -> None:
    started = time.monotonic()
    with run.lock:
        if run.state in _TERMINAL:
            return
        run.state = "RUNNING"
    try:
        context = execution.context or {}
        catalog = Catalog(backend.account_id, backend.region_name, (context.get("Database") or DEFAULT_DATABASE))
        columns, rows = execute(execution.query, catalog)
        run.scanned = catalog.scanned
        _write_csv(backend, execution.config["OutputLocation"], csv_text(columns, rows))
        run.columns, run.rows = columns, rows
        run.engine_ms = int((time.monotonic() - started) * 1000)
        run.finish("SUCCEEDED")
    except QueryError as error:
        run.finish("FAILED", str(error), 2)
    except Exception as error:  # noqa: BLE001 - a query ends FAILED, never a 500
        LOG.exception("query %s failed in the engine", execution.id)
        run.finish("FAILED", f"GENERIC_INTERNAL_ERROR: {type(error).__name__}: {error}", 1)


def _write_csv(backend: Any, location: str, text: str) -> None:
    from moto.s3.models import s3_backends

    bucket, _, key = location.removeprefix("s3://").partition("/")
    s3 = s3_backends[backend.account_id][backend.partition]
    if bucket not in s3.buckets:
        raise QueryError(f"Unable to verify/create output bucket {bucket}")
    s3.put_object(bucket_name=bucket, key_name=key, value=text.encode("utf-8"))


def _execution_dict(execution: Any, run: Run) -> dict:
    status: dict[str, Any] = {"State": run.state, "SubmissionDateTime": run.submitted}
    if run.completed is not None:
        status["CompletionDateTime"] = run.completed
    if run.reason:
        status["StateChangeReason"] = run.reason
    if run.state == "FAILED":
        status["AthenaError"] = {
            "ErrorCategory": run.category or 2,
            "ErrorType": 1006 if run.category == 2 else 401,
            "Retryable": False,
            "ErrorMessage": run.reason,
        }
    statement = execution.query.lstrip().split(None, 1)[0].upper() if execution.query.strip() else ""
    return {
        "QueryExecutionId": execution.id,
        "Query": execution.query,
        "StatementType": "DML" if statement in ("SELECT", "WITH", "VALUES", "(") else "DDL",
        "SubstatementType": "SELECT" if statement in ("SELECT", "WITH", "VALUES", "(") else statement,
        "ResultConfiguration": execution.config,
        "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
        "QueryExecutionContext": execution.context or {},
        "Status": status,
        "Statistics": {
            "EngineExecutionTimeInMillis": run.engine_ms,
            "DataScannedInBytes": run.scanned,
            "TotalExecutionTimeInMillis": int(((run.completed or time.time()) - run.submitted) * 1000),
            "QueryQueueTimeInMillis": 0,
            "ServicePreProcessingTimeInMillis": 0,
            "QueryPlanningTimeInMillis": 0,
            "ServiceProcessingTimeInMillis": 0,
            "ResultReuseInformation": {"ReusedPreviousResult": False},
        },
        "WorkGroup": execution.workgroup.name if execution.workgroup else "primary",
        "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"},
    }


def apply() -> None:
    from moto.athena.models import Execution
    from moto.athena.responses import AthenaResponse

    if getattr(AthenaResponse, "runs_sql", False):
        return

    def lookup(self: Any, execution_id: str) -> tuple[Any, Run]:
        execution = self.athena_backend.executions.get(execution_id)
        run = _runs(self.athena_backend).get(execution_id)
        if execution is None or run is None:
            raise _invalid(f"QueryExecution {execution_id} was not found")
        return execution, run

    def start_query_execution(self: Any) -> str:
        backend = self.athena_backend
        name = self._get_param("WorkGroup") or "primary"
        workgroup = backend.work_groups.get(name)
        if workgroup is None:
            raise _invalid(f"WorkGroup {name} is not found.")
        query = self._get_param("QueryString") or ""
        config = _output_location(workgroup, self._get_param("ResultConfiguration"))
        context = self._get_param("QueryExecutionContext") or {}
        execution = Execution(query, context, config, workgroup, self._get_param("ExecutionParameters"))
        backend.executions[execution.id] = execution
        run = Run()
        _runs(backend)[execution.id] = run
        worker = threading.Thread(target=_run, args=(backend, execution, run), name=f"athena-{execution.id}")
        worker.daemon = True
        worker.start()
        return json.dumps({"QueryExecutionId": execution.id})

    def get_query_execution(self: Any) -> str:
        execution, run = lookup(self, self._get_param("QueryExecutionId"))
        return json.dumps({"QueryExecution": _execution_dict(execution, run)})

    def batch_get_query_execution(self: Any) -> str:
        found, missing = [], []
        for execution_id in self._get_param("QueryExecutionIds") or []:
            try:
                found.append(_execution_dict(*lookup(self, execution_id)))
            except Exception as error:  # noqa: BLE001 - reported per id, as Athena does
                missing.append(
                    {"QueryExecutionId": execution_id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": str(error)}
                )
        return json.dumps({"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing})

    def get_query_results(self: Any) -> str:
        execution, run = lookup(self, self._get_param("QueryExecutionId"))
        if run.state != "SUCCEEDED":
            if run.state in ("QUEUED", "RUNNING"):
                raise _invalid(f"Query has not yet finished. Current state: {run.state}")
            raise _invalid(f"Query did not finish successfully. Final query state: {run.state}\n{run.reason or ''}")
        limit = int(self._get_param("MaxResults") or MAX_RESULTS)
        if not 1 <= limit <= MAX_RESULTS:
            raise _invalid(f"MaxResults {limit} must be between 1 and {MAX_RESULTS}")
        token = self._get_param("NextToken")
        start = int(base64.b64decode(token).decode()) if token else 0
        table = [[c["Name"] for c in run.columns], *run.rows]
        page = table[start : start + limit]
        result: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in page],
                "ResultSetMetadata": {"ColumnInfo": run.columns},
            },
        }
        if start + limit < len(table):
            result["NextToken"] = base64.b64encode(str(start + limit).encode()).decode()
        return json.dumps(result)

    def stop_query_execution(self: Any) -> str:
        _, run = lookup(self, self._get_param("QueryExecutionId"))
        run.finish("CANCELLED", "Query was cancelled by user")
        return "{}"

    for handler in (
        start_query_execution,
        get_query_execution,
        batch_get_query_execution,
        get_query_results,
        stop_query_execution,
    ):
        setattr(AthenaResponse, handler.__name__, handler)
    AthenaResponse.runs_sql = True
