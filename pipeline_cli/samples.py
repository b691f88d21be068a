"""Deterministic sample transaction files: for the demo, the end-to-end tests and the benchmark."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

HEADER = "transaction_id,account_id,booked_at,amount,currency,direction,description\n"
CURRENCIES = (("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("GBP", 2))
# One way to break each rule; cycled through so a file shows every kind.
BAD_VARIANTS: tuple[Callable[[str], str], ...] = (
    lambda row: row.replace(",ACC", ",acc-", 1),  # INVALID_ACCOUNT
    lambda row: row.replace("Z,", "+25:00,", 1),  # INVALID_TIMESTAMP
    lambda row: _replace_field(row, 3, "-" + row.split(",")[3]),  # INVALID_AMOUNT
    lambda row: _replace_field(row, 3, row.split(",")[3].split(".")[0] + ".12345"),  # AMOUNT_PRECISION
    lambda row: _replace_field(row, 4, "ZZZ"),  # INVALID_CURRENCY
    lambda row: _replace_field(row, 5, "SIDEWAYS"),  # INVALID_DIRECTION
    lambda row: _replace_field(row, 1, ""),  # MISSING_FIELD
    lambda row: row.rsplit(",", 2)[0],  # MALFORMED_ROW: too few columns
)


def _replace_field(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


def transaction_row(rng: random.Random, number: int, *, days: int | None = None) -> str:
    """A valid row booked on a day of 2026 (or, with ``days``, on one of the first days of March)."""
    currency, exponent = CURRENCIES[number % len(CURRENCIES)]
    amount = str(rng.randrange(1, 10**7))
    if exponent:
        amount += "." + str(rng.randrange(10**exponent)).zfill(exponent)
    month, day = (3, 1 + rng.randrange(days)) if days else (rng.randrange(1, 13), rng.randrange(1, 29))
    return (
        f"TX-{number:010d},ACC{rng.randrange(10**6):08d},"
        f"2026-{month:02d}-{day:02d}T{rng.randrange(24):02d}:"
        f"{rng.randrange(60):02d}:{rng.randrange(60):02d}Z,{amount},{currency},"
        f"{'DEBIT' if rng.random() < 0.5 else 'CREDIT'},payment reference {rng.randrange(10**9)}"
    )


def write_transactions(path: Path, *, rows: int, bad_every: int = 0, days: int | None = None, seed: int = 7) -> Path:
    """`rows` CSV rows; every `bad_every`-th row (if set) breaks one rule of the contract. Booked
    over the whole year (a booking date per few rows: the widest fan-out), or with ``days`` over a
    few days, as a day's file with its late bookings is."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        for number in range(1, rows + 1):
            row = transaction_row(rng, number, days=days)
            if bad_every and number % bad_every == 0:
                row = BAD_VARIANTS[(number // bad_every) % len(BAD_VARIANTS)](row)
            out.write(row + "\n")
    return path


BULK_BLOCK_ROWS = 100_000


def write_bulk(path: Path, *, size_mb: float, bad_every: int = 100, days: int | None = None, seed: int = 7) -> int:
    """About ``size_mb`` MB of rows, fast enough for gigabytes: one block of rows is generated and
    repeated with new transaction ids and new accounts, so ids stay unique and the accounts (the
    daily totals' keys) keep growing with the file. The number of rows written."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    block: list[tuple[int | None, str]] = []  # (account number, the rest of the row after it)
    for number in range(1, BULK_BLOCK_ROWS + 1):
        row = transaction_row(rng, number, days=days)
        if bad_every and number % bad_every == 0:
            block.append((None, BAD_VARIANTS[(number // bad_every) % len(BAD_VARIANTS)](row).split(",", 1)[1]))
        else:
            _, account, rest = row.split(",", 2)
            block.append((int(account[3:]), "," + rest))
    target, written, rows = int(size_mb * 1_000_000), 0, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        while written < target:
            text = "".join(
                f"TX-{rows + n:010d},{rest}\n"
                if account is None
                else f"TX-{rows + n:010d},ACC{(account + rows) % 10**8:08d}{rest}\n"
                for n, (account, rest) in enumerate(block, start=1)
            )
            out.write(text)
            written += len(text)
            rows += len(block)
    return rows
