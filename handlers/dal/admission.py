"""The admission queue, in the job table: tickets in arrival order, and the jobs holding a slot.

* ``#admission`` (an item whose key no jobId can take): ``nextTicket``, the counter that orders
  arrivals, and ``holders``, the set of jobs running now (at most MAX_RUNNING_JOBS).
* A job waiting for a slot carries ``queue = "WAITING"`` and its ``ticket``: the table's sparse
  index ``queue-index`` (hash ``queue``, range ``ticket``) lists the waiting jobs oldest first.

Taking a slot is one conditional write on the set (a full set, or a job already in it, fails it),
so two admitters never admit more jobs than there are slots. Leaving it is an idempotent delete
from the set.
"""

from __future__ import annotations

from boto3.dynamodb.conditions import Key

from handlers.dal.jobs import table, written

ADMISSION_KEY = "#admission"
QUEUE_INDEX = "queue-index"
WAITING = "WAITING"


def take_ticket() -> int:
    result = table().update_item(
        Key={"jobId": ADMISSION_KEY},
        UpdateExpression="ADD nextTicket :one",
        ExpressionAttributeValues={":one": 1},
        ReturnValues="UPDATED_NEW",
    )
    return int(result["Attributes"]["nextTicket"])


def holders() -> set[str]:
    item = table().get_item(Key={"jobId": ADMISSION_KEY}, ConsistentRead=True).get("Item") or {}
    return set(item.get("holders") or ())


def hold(job_id: str, *, slots: int) -> bool:
    """Take a slot for ``job_id``. True if it holds one now (taken here or before)."""
    taken = written(
        lambda: table().update_item(
            Key={"jobId": ADMISSION_KEY},
            UpdateExpression="ADD holders :job",
            ConditionExpression="attribute_not_exists(holders) OR size(holders) < :slots",
            ExpressionAttributeValues={":job": {job_id}, ":slots": slots},
        )
    )
    return taken or job_id in holders()


def release(job_id: str) -> None:
    table().update_item(
        Key={"jobId": ADMISSION_KEY},
        UpdateExpression="DELETE holders :job",
        ExpressionAttributeValues={":job": {job_id}},
    )


def waiting(limit: int) -> list[dict]:
    """The oldest waiting jobs (jobId, ticket), at most ``limit`` (the index is eventually
    consistent: admission re-checks each job with a conditional write)."""
    response = table().query(
        IndexName=QUEUE_INDEX,
        KeyConditionExpression=Key("queue").eq(WAITING),
        ScanIndexForward=True,
        Limit=limit,
    )
    return [{"jobId": item["jobId"], "ticket": int(item["ticket"])} for item in response.get("Items", [])]


def place(ticket: int) -> int:
    """1 for the next job to start, 2 for the one after it, ..."""
    ahead = 0
    kwargs: dict = {
        "IndexName": QUEUE_INDEX,
        "KeyConditionExpression": Key("queue").eq(WAITING) & Key("ticket").lt(ticket),
        "Select": "COUNT",
    }
    while True:
        response = table().query(**kwargs)
        ahead += int(response.get("Count", 0))
        if "LastEvaluatedKey" not in response:
            return ahead + 1
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
