"""Typed events: a frozen dataclass per event type, published through EventLogClient."""

import re
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. Its fields become the JSON `event_context` in ClickHouse.

    `event_type` defaults to the class name in snake_case (`UserCreated` → `user_created`);
    bump `metadata_version` when the fields of an event type change meaning.
    """

    event_type: ClassVar[str] = ""
    metadata_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("event_type"):
            cls.event_type = snake_case(cls.__name__)
        if not EVENT_TYPE_PATTERN.match(cls.event_type):
            raise TypeError(f"event_type {cls.event_type!r} of {cls.__name__} must be snake_case")

    def context(self) -> dict[str, Any]:
        return asdict(self)
