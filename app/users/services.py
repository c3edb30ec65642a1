from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from app.outbox.client import EventLogClient

from .events import UserCreated
from .hashing import password_set_bounded
from .models import User, normalize_email


class UserEmailAlreadyRegistered(Exception):
    """Another user holds this email address (compared case-insensitively)."""


def user_register(
    *, email: str, password: str | None = None, first_name: str = "", last_name: str = ""
) -> User:
    """Create a user and publish `user_created` in the same transaction.

    Without a password the account cannot log in until one is set. The email is stored in its
    canonical form (see normalize_email), so one mailbox is one user.

    Raises ValidationError (with per-field messages) for bad input, UserEmailAlreadyRegistered
    when the email is taken (checked before the password is hashed, so a taken address costs
    no hash; a concurrent registration that commits first is caught by the unique index), and
    PasswordHashingBusy when this process is already hashing as many passwords as it may.
    """
    errors: dict[str, list[str]] = {}
    try:
        canonical_email = normalize_email(email)
    except ValidationError as error:
        errors["email"] = error.messages
        canonical_email = email.strip().lower()
    user = User(email=canonical_email, first_name=first_name.strip(), last_name=last_name.strip())
    if not errors:
        try:
            validate_email(user.email)
            user.full_clean(exclude=["password"], validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            errors.update(
                error.message_dict if hasattr(error, "error_dict") else {"email": error.messages}
            )
    if password is not None:
        try:
            validate_password(password, user)
        except ValidationError as error:
            errors["password"] = error.messages
    if errors:
        raise ValidationError(errors)
    if User.objects.filter(email=user.email).exists():
        raise UserEmailAlreadyRegistered(user.email)

    password_set_bounded(user, password)
    try:
        with transaction.atomic():
            user.save()
            EventLogClient().publish(UserCreated(user_id=user.pk, email=user.email))
    except IntegrityError as error:
        # PostgreSQL reports the unique violation only after a concurrent registration of the
        # same email committed, so the row is visible here.
        if User.objects.filter(email=user.email).exists():
            raise UserEmailAlreadyRegistered(user.email) from error
        raise
    return user
