import zoneinfo

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.files.base import ContentFile

from .. import avatars, visible_text
from ..services import EVERYONE_WORDS


class RoomCreateForm(forms.Form):
    name = forms.CharField(max_length=80, label="Room name")
    topic = forms.CharField(max_length=200, required=False)
    private = forms.BooleanField(
        required=False,
        label="Private",
        help_text="Only the people you invite can see it.",
    )


class RoomDetailsForm(forms.Form):
    """A room's settings: its name and topic (its address stays)."""

    name = forms.CharField(max_length=80, label="Room name")
    topic = forms.CharField(max_length=200, required=False)


class UsernameForm(forms.Form):
    """The user an owner invites, removes or makes owner."""

    username = forms.CharField(max_length=150)


class SignupForm(UserCreationForm):
    """Django's own sign-up form: username, password, and the password validators; and no
    username that could pass for another (chat/visible_text.py), nor one that @room or
    @here would mean (services.EVERYONE_WORDS)."""

    def clean_username(self) -> str:
        username = super().clean_username()
        if username is None:  # taken: Django's form already said so
            return username
        problem = visible_text.username_problem(username)
        if problem:
            raise forms.ValidationError(problem, code="lookalike")
        if username.lower() in EVERYONE_WORDS:
            raise forms.ValidationError(
                f"@{username} notifies a whole room; choose another username.", code="reserved"
            )
        return username


def _time_zone_choices() -> list[tuple[str, str]]:
    return [("", "(not set)")] + [(zone, zone) for zone in sorted(zoneinfo.available_timezones())]


class AccountForm(forms.Form):
    """The account page: what others see of you (display name, status, time zone, avatar)
    and your email. The avatar is checked and re-encoded here (chat/avatars.py)."""

    display_name = forms.CharField(
        max_length=50,
        required=False,
        help_text="Shown beside your messages instead of your username.",
    )
    status = forms.CharField(max_length=100, required=False)
    time_zone = forms.ChoiceField(choices=_time_zone_choices, required=False)
    email = forms.EmailField(required=False, help_text="Where password-reset mail goes.")
    avatar = forms.FileField(
        required=False,
        help_text="PNG, JPEG, GIF or WebP, up to 2 MiB; cropped to a square.",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )
    remove_avatar = forms.BooleanField(required=False, label="Use my initials instead")

    def clean_display_name(self) -> str:
        name = self.cleaned_data["display_name"]
        problem = visible_text.display_name_problem(name)
        if problem:
            raise forms.ValidationError(problem, code="display_name")
        return name

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        if visible_text.display_name_problem(status):
            raise forms.ValidationError(
                "A status is one line of text, without control characters.", code="status"
            )
        return status

    def clean_avatar(self) -> ContentFile | None:
        upload = self.cleaned_data["avatar"]
        if not upload:
            return None
        if upload.size > avatars.AVATAR_MAX_BYTES:  # before reading it into memory
            raise forms.ValidationError("The image is larger than 2 MiB.", code="too_large")
        return avatars.avatar_from_upload(upload.read())
