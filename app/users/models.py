from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


def normalize_email(email: str) -> str:
    """Mail providers treat addresses case-insensitively in practice, so die-hard stores them
    lowercased: the login and the uniqueness check then ignore letter case."""
    return email.strip().lower()


class UserManager(BaseUserManager["User"]):
    """What Django's auth machinery (createsuperuser, login) needs; registration is a service."""

    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        assert username is not None
        return self.get(email=normalize_email(username))

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> "User":
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.full_clean()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> "User":
        return self.create_user(email, password, is_staff=True, is_superuser=True, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who registered; the email address is the login."""

    # Stored lowercased (see normalize_email), so this index makes it unique case-insensitively.
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        # Every form (the admin's too) must store the address the way registration does, or the
        # unique index would tell "Ada@x.org" and "ada@x.org" apart.
        if self.email:
            self.email = normalize_email(self.email)
