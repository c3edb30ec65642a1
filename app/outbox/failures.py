"""Whose fault a failed insert is: the data's, or the infrastructure's.

Only errors that blame the data count toward dead-lettering. They are recognised by the error
code ClickHouse returns with them (clickhouse-connect's `DatabaseError.code`, from the
`X-ClickHouse-Exception-Code` header), or raised on our side while the rows are serialised.
Everything else — connection refused or reset, timeouts, 5xx without a data code, wrong
credentials (516), an unknown table (60) or database (81), readonly mode, too many parts — is
infrastructure: it never dead-letters anything, however long it lasts.
"""

import enum

from clickhouse_connect.driver.exceptions import DatabaseError, DataError

# ClickHouse error codes that blame the inserted rows rather than the server.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        469,  # VIOLATED_CONSTRAINT
    }
)


class Blame(enum.Enum):
    DATA = "data"
    INFRASTRUCTURE = "infrastructure"


def error_code(error: BaseException) -> int | None:
    """The ClickHouse error code of `error`, when ClickHouse sent one."""
    code = getattr(error, "code", None)
    return code if isinstance(code, int) else None


def failure_blame(error: BaseException) -> Blame:
    if isinstance(error, DatabaseError):
        if error_code(error) in DATA_ERROR_CODES:
            return Blame.DATA
        # Raised by clickhouse-connect while serialising a value the column cannot hold.
        if isinstance(error, DataError) and error_code(error) is None:
            return Blame.DATA
        return Blame.INFRASTRUCTURE
    # Raised on our side while building the insert (a value of the wrong type or range).
    if isinstance(error, ValueError | TypeError | OverflowError):
        return Blame.DATA
    return Blame.INFRASTRUCTURE


def error_text(error: BaseException, *, limit: int = 2000) -> str:
    return f"{type(error).__name__}: {error}"[:limit]
