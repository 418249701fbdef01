from django import forms
from django.contrib.auth.forms import UserCreationForm

from .. import visible_text


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
    username that could pass for another (chat/visible_text.py)."""

    def clean_username(self) -> str:
        username = super().clean_username()
        if username is None:  # taken: Django's form already said so
            return username
        problem = visible_text.username_problem(username)
        if problem:
            raise forms.ValidationError(problem, code="lookalike")
        return username
