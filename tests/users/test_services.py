import pytest
from django.core.exceptions import ValidationError

from app.outbox.models import OutboxEvent
from app.users.models import User
from app.users.services import UserEmailAlreadyRegistered, user_register

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "Marmalade-Orbit-5930"


def test_user_register_creates_a_user_with_normalized_fields():
    user = user_register(
        email="  Ada.Lovelace@Example.COM ",
        password=STRONG_PASSWORD,
        first_name=" Ada ",
        last_name=" Lovelace ",
    )

    stored = User.objects.get(pk=user.pk)
    assert stored.email == "ada.lovelace@example.com"
    assert (stored.first_name, stored.last_name) == ("Ada", "Lovelace")
    assert stored.check_password(STRONG_PASSWORD)
    assert stored.password != STRONG_PASSWORD
    assert stored.is_active
    assert not stored.is_staff
    assert not stored.is_superuser


def test_user_register_without_password_leaves_the_password_unusable():
    user = user_register(email="grace@example.com")

    stored = User.objects.get(pk=user.pk)
    assert not stored.has_usable_password()
    assert not stored.check_password("")


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Zq7!x", id="too-short"),
        pytest.param("password123", id="common"),
        pytest.param("5849302716", id="numeric"),
        pytest.param("katherine.johnson", id="like-the-email"),
    ],
)
def test_user_register_rejects_a_weak_password(password):
    with pytest.raises(ValidationError) as raised:
        user_register(email="katherine.johnson@example.com", password=password)

    assert set(raised.value.message_dict) == {"password"}
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("not-an-email", id="no-at"),
        pytest.param("ada@", id="no-domain"),
        pytest.param("@example.com", id="no-local-part"),
        pytest.param("ada lovelace@example.com", id="space"),
        pytest.param("", id="empty"),
        pytest.param("a" * 250 + "@example.com", id="too-long"),
    ],
)
def test_user_register_rejects_an_invalid_email(email):
    with pytest.raises(ValidationError) as raised:
        user_register(email=email, password=STRONG_PASSWORD)

    assert set(raised.value.message_dict) == {"email"}
    assert not User.objects.exists()


def test_user_register_reports_the_password_together_with_other_invalid_fields():
    with pytest.raises(ValidationError) as raised:
        user_register(email="ada@example.com", password="123", first_name="x" * 151)

    assert set(raised.value.message_dict) == {"password", "first_name"}


@pytest.mark.parametrize("second_email", ["hopper@example.com", "Hopper@EXAMPLE.com"])
def test_user_register_refuses_an_email_already_registered(user_factory, second_email):
    user_factory(email="hopper@example.com")

    with pytest.raises(UserEmailAlreadyRegistered):
        user_register(email=second_email, password=STRONG_PASSWORD)

    # The failed insert is rolled back to its savepoint: the caller's transaction stays usable.
    assert list(User.objects.values_list("email", flat=True)) == ["hopper@example.com"]


def test_user_register_publishes_user_created_in_the_same_transaction():
    user = user_register(email="Event@Example.com")

    (event,) = OutboxEvent.objects.all()
    assert event.event_type == "user_created"
    assert event.payload == {"user_id": user.pk, "email": "event@example.com"}


def test_a_refused_registration_publishes_nothing():
    user_register(email="once@example.com")

    with pytest.raises(UserEmailAlreadyRegistered):
        user_register(email="ONCE@example.com")
    with pytest.raises(ValidationError):
        user_register(email="not-an-email")

    assert OutboxEvent.objects.count() == 1
