from dataclasses import dataclass

from app.outbox.events import Event


@dataclass(frozen=True, kw_only=True)
class UserCreated(Event):
    user_id: int
    email: str
