"""Declarative base and the column types that the models share."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.types import TypeDecorator

# Explicit constraint names keep migrations identical on PostgreSQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, also on SQLite, which stores no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"Naive datetime {value!r}; pass an aware UTC datetime.")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def clean_text(value: str) -> str:
    """Return `value` without NUL characters or lone surrogates, which PostgreSQL rejects."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def clean_json(value: Any) -> Any:
    """Return `value` with its strings cleaned and NaN or infinite numbers turned into null.

    Providers' payloads reach JSON columns as they came, and PostgreSQL's JSONB
    rejects NaN, infinities and NUL characters that Python's json accepts.
    """
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value


class CleanJSON(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) that stores any provider payload the database accepts."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return clean_json(value)


class BoundedString(TypeDecorator[str]):
    """A VARCHAR that cuts outside values to its length instead of failing the write.

    The columns using it hold copies of provider fields, whose full value stays
    in the stored event payload.
    """

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, str):
            return value
        length = cast(String, self.impl_instance).length
        return clean_text(value)[:length]


class CleanText(TypeDecorator[str]):
    """TEXT without the NUL characters PostgreSQL rejects."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return clean_text(value) if isinstance(value, str) else value


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class BoundedInteger(TypeDecorator[int]):
    """An INTEGER that stores null for a provider number outside its range."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, int) and not INT32_MIN <= value <= INT32_MAX:
            return None
        return value


class BoundedNumeric(TypeDecorator[Decimal]):
    """A NUMERIC that stores null for a value that is not finite or does not fit."""

    impl = Numeric
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        column = cast(Numeric[Decimal], self.impl_instance)
        scale = column.scale or 0
        limit = Decimal(10) ** ((column.precision or 0) - scale)
        if abs(number) >= limit:
            return None
        # Round as the database will: 99999999.9999999 becomes 100000000.000000.
        number = number.quantize(Decimal(1).scaleb(-scale))
        return number if abs(number) < limit else None


JSONType = CleanJSON()
# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigIntegerId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


uuid_pk = Annotated[
    uuid.UUID, mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
]
bigint_pk = Annotated[
    int, mapped_column(BigIntegerId, primary_key=True, autoincrement=True)
]
created_at = Annotated[datetime, mapped_column(UTCDateTime, default=utcnow)]
updated_at = Annotated[
    datetime, mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
]
json_object = Annotated[dict[str, Any], mapped_column(JSONType, default=dict)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
    }
