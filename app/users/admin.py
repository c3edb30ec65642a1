from typing import TYPE_CHECKING

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from .models import User

# Django's admin and form classes are generic only for the type checker (django-stubs): they
# cannot be subscripted at run time.
if TYPE_CHECKING:
    _UserCreationFormBase = AdminUserCreationForm[User]
    _UserChangeFormBase = UserChangeForm[User]
    _UserAdminBase = DjangoUserAdmin[User]
else:
    _UserCreationFormBase = AdminUserCreationForm
    _UserChangeFormBase = UserChangeForm
    _UserAdminBase = DjangoUserAdmin


class UserCreationAdminForm(_UserCreationFormBase):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(_UserChangeFormBase):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(_UserAdminBase):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ("-date_joined",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )
