"""booked_at: ISO 8601 date-time with an explicit offset, a real calendar date, stored in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# YYYY-MM-DDThh:mm:ss[.f{1,6}](Z|+hh:mm|-hh:mm). Field ranges are checked here; the calendar
# (Feb 30, leap years) by datetime. More than 6 fraction digits would be silently truncated
# by datetime, so they are refused instead.
TIMESTAMP_PATTERN = (
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,6}))?"
    r"(Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def parse_booked_at(text: object) -> datetime | None:
    """The instant as an aware UTC datetime, or None when ``text`` breaks the contract."""
    if not isinstance(text, str):
        return None
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if offset == "Z":
        tz = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):  # Feb 30, year 0 and the like, or out of range in UTC
        return None
