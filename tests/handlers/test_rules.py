"""Contract rules without AWS: one test per reason code, and properties of amounts and timestamps."""

import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.errors import UnreadableFileError
from handlers.logic.amounts import amount_to_minor_units, format_minor_units
from handlers.logic.contract import CURRENCY_EXPONENTS, REASON_CODES
from handlers.logic.planning import plan_source
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.timestamps import parse_booked_at
from handlers.logic.validation import validate_text
from tests.handlers.conftest import HEADER, csv_text, good_row


def run(text: str | bytes, fmt: str = "csv"):
    data = text.encode() if isinstance(text, str) else text
    rejects, valid = [], []
    summary = validate_text(
        text=open_text(CountingReader(io.BytesIO(data))), fmt=fmt, on_valid=valid.append, on_reject=rejects.append
    )
    assert plan_source([data], fmt=fmt, chunk_bytes=len(data) + 1).records == summary.records
    return summary, valid, rejects


GOOD = "T1,ACC1,2024-01-31T10:00:00Z,12.50,USD,DEBIT,coffee"

REASON_CASES = {
    "MISSING_FIELD": "T1,,2024-01-31T10:00:00Z,12.50,USD,DEBIT,x",
    "INVALID_ID": "T 1,ACC1,2024-01-31T10:00:00Z,12.50,USD,DEBIT,x",
    "INVALID_ACCOUNT": "T1,acc1,2024-01-31T10:00:00Z,12.50,USD,DEBIT,x",
    "INVALID_TIMESTAMP": "T1,ACC1,2023-02-29T10:00:00Z,12.50,USD,DEBIT,x",
    "INVALID_AMOUNT": "T1,ACC1,2024-01-31T10:00:00Z,-12.50,USD,DEBIT,x",
    "AMOUNT_PRECISION": "T1,ACC1,2024-01-31T10:00:00Z,12.5,JPY,DEBIT,x",
    "INVALID_CURRENCY": "T1,ACC1,2024-01-31T10:00:00Z,12.50,usd,DEBIT,x",
    "INVALID_DIRECTION": "T1,ACC1,2024-01-31T10:00:00Z,12.50,USD,debit,x",
    "FIELD_TOO_LONG": "T1,ACC1,2024-01-31T10:00:00Z,12.50,USD,DEBIT," + "d" * 501,
    "DUPLICATE_ID": None,
    "MALFORMED_ROW": "T1,ACC1,2024-01-31T10:00:00Z,12.50,USD",
}


@pytest.mark.parametrize("code", REASON_CODES)
def test_each_reason_code_rejects_only_the_bad_row(code):
    bad = REASON_CASES[code]
    rows = [good_row(1), bad or "", good_row(3)]
    if bad is None:
        rows[1] = good_row(1, amount="5.00")  # repeats T00001
    summary, valid, rejects = run(csv_text(*rows))
    assert summary.records == 3 and summary.valid == 2 and summary.rejected == 1
    assert rejects[0]["reasons"] == [code]
    assert rejects[0]["line"] == 3
    assert [v[1] for v in valid] == ["T00001", "T00003"]


def test_all_reasons_that_apply_are_reported():
    summary, _, rejects = run(csv_text("T 1,acc,2024-13-01T00:00:00Z,1e5,XXX,SIDEWAYS," + "x" * 600))
    assert rejects[0]["reasons"] == [
        "INVALID_ID",
        "INVALID_ACCOUNT",
        "INVALID_TIMESTAMP",
        "INVALID_AMOUNT",
        "INVALID_CURRENCY",
        "INVALID_DIRECTION",
        "FIELD_TOO_LONG",
    ]


@pytest.mark.parametrize(
    "amount",
    [
        "1.5e2",
        "NaN",
        "Infinity",
        " 1.00",
        "1,000.00",
        "+1",
        "١٢",
        "1.",
        ".5",
        "1234567890123456",
        "1.000",
        "",
    ],
)
def test_amount_forms_refused(amount):
    assert amount_to_minor_units(amount=amount, currency="USD") is None


def test_json_number_amount_rejected_and_string_accepted():
    text = (
        '{"transaction_id":"A","account_id":"B","booked_at":"2024-01-01T00:00:00Z","amount":1.10,'
        '"currency":"USD","direction":"CREDIT"}\n'
        '{"transaction_id":"C","account_id":"B","booked_at":"2024-01-01T00:00:00Z","amount":"1.10",'
        '"currency":"USD","direction":"CREDIT","note":"kept"}\n'
    )
    summary, valid, rejects = run(text, "jsonl")
    assert rejects[0]["reasons"] == ["INVALID_AMOUNT"] and rejects[0]["record"]["amount"] == Decimal("1.10")
    assert valid[0][-1] == '{"note":"kept"}' and summary.unknown_columns == ["note"]


def test_bom_crlf_quoted_newline_and_undecodable_row():
    body = ("\ufeff" + csv_text(GOOD, 'T2,ACC1,2024-01-31T10:00:00+05:30,1,KWD,CREDIT,"two\r\nlines"')).encode()
    body += b"T3,ACC1,2024-01-31T10:00:00Z,1.00,USD,DEBIT,caf\xe9\r\n"
    summary, valid, rejects = run(body)
    assert summary.valid == 2 and valid[1][7] == "two\r\nlines"
    assert rejects == [
        {
            "line": 5,
            "transaction_id": "T3",
            "reasons": ["MALFORMED_ROW"],
            "details": ["description: contains bytes that are not valid UTF-8"],
            "record": rejects[0]["record"],
        }
    ]
    assert rejects[0]["record"]["description"] == "caf\\xe9"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe" + "x,y\n".encode("utf-16-le"),
        HEADER.encode() + b"\r\n",
        b"1,2,3\n4,5,6\n",
        b"transaction_id,transaction_id\nA,B\n",
    ],
)
def test_unreadable_files_raise(body):
    with pytest.raises(UnreadableFileError):
        run(body)


def test_unknown_column_kept_and_reported():
    summary, valid, _ = run(csv_text(GOOD + ",blue", header=HEADER + ",colour"))
    assert summary.unknown_columns == ["colour"] and valid[0][-1] == '{"colour":"blue"}'


@settings(max_examples=200, deadline=None)
@given(currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)), integer=st.integers(0, 10**15 - 1), data=st.data())
def test_amount_roundtrip_exact(currency, integer, data):
    exponent = CURRENCY_EXPONENTS[currency]
    digits = data.draw(st.integers(0, exponent))
    fraction = data.draw(st.integers(0, 10**digits - 1)) if digits else 0
    text = str(integer) + (f".{fraction:0{digits}d}" if digits else "")
    minor = amount_to_minor_units(amount=text, currency=currency)
    assert Decimal(minor).scaleb(-exponent) == Decimal(text)
    assert Decimal(format_minor_units(minor_units=minor, exponent=exponent)) == Decimal(text)
    if exponent:
        assert (
            amount_to_minor_units(
                amount=text + "0" * (exponent - digits + 1) if digits else text + ".0" + "0" * exponent,
                currency=currency,
            )
            is None
        )


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_timestamp_with_offset_roundtrips_to_utc(moment, offset_minutes):
    tz = timezone(timedelta(minutes=offset_minutes))
    text = moment.replace(tzinfo=tz).isoformat()
    if offset_minutes == 0:
        text = text.replace("+00:00", "Z")
    parsed = parse_booked_at(text)
    assert parsed == moment.replace(tzinfo=tz) and parsed.tzinfo == UTC
    assert parse_booked_at(text[:19]) is None  # no offset
    assert parse_booked_at(text.replace("T", " ")) is None


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=40))
def test_timestamp_parser_never_crashes(text):
    parse_booked_at(text)
    amount_to_minor_units(amount=text, currency="USD")
