import unicodedata
from typing import Any, ClassVar

import idna
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def normalize_email(email: str) -> str:
    """One mailbox, one address: the form die-hard stores, compares and logs in with.

    The domain becomes its IDNA (UTS #46) ASCII form, so `x@exämple.com` and
    `x@xn--exmple-cua.com` are one user; the whole address is lowercased, as mail providers
    treat addresses case-insensitively in practice. Raises ValidationError when the domain is
    no valid internationalized name, or when one of its labels mixes scripts (a "paypal" whose
    p and a are Cyrillic): such look-alike domains are refused, not flagged (docs/api.md).
    """
    address = unicodedata.normalize("NFC", email.strip())
    local, at, domain = address.rpartition("@")
    if not (at and local and domain):
        return address.lower()  # validate_email judges it
    if not local.isascii():
        # Letters such as the dotless i (U+0131) pass Django's case-insensitive check and make
        # look-alike addresses of ASCII ones; mail servers rarely accept them anyway.
        raise ValidationError(
            "Enter a valid email address: the part before @ must be ASCII.", code="invalid"
        )
    if domain.isascii() and not any(
        label.lower().startswith("xn--") for label in domain.split(".")
    ):
        return address.lower()  # a plain ASCII domain needs no mapping
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
        unicode_domain = idna.decode(ascii_domain)
    except (idna.IDNAError, UnicodeError) as error:
        raise ValidationError(
            "Enter a valid email address: its domain is not a valid internationalized name.",
            code="invalid",
        ) from error
    for label in unicode_domain.split("."):
        if len(scripts := _letter_scripts(label)) > 1:
            raise ValidationError(
                f"Enter a valid email address: the domain label {label!r} mixes scripts "
                f"({', '.join(sorted(scripts))}), as look-alike domains do.",
                code="mixed_scripts",
            )
    return f"{local}@{ascii_domain}".lower()


# Scripts written together in one language count as one (Japanese, Chinese, Korean).
_SCRIPT_FAMILIES = {"CJK": "HAN", "HIRAGANA": "HAN", "KATAKANA": "HAN", "HANGUL": "HAN"}


def _letter_scripts(label: str) -> set[str]:
    """The scripts of the letters in `label` (digits and hyphens have none), by Unicode name."""
    scripts = set()
    for character in label:
        if character.isalpha():
            script = unicodedata.name(character, "UNKNOWN").split(" ", 1)[0]
            scripts.add(_SCRIPT_FAMILIES.get(script, script))
    return scripts


class UserManager(BaseUserManager["User"]):
    """What Django's auth machinery (createsuperuser, login) needs; registration is a service."""

    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        assert username is not None
        try:
            email = normalize_email(username)
        except ValidationError:
            raise self.model.DoesNotExist(username) from None  # no such address can exist
        return self.get(email=email)

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
            try:
                self.email = normalize_email(self.email)
            except ValidationError as error:
                raise ValidationError({"email": error.messages}) from error
