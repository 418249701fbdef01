from django import forms
from django.contrib.auth.forms import UserCreationForm


class RoomCreateForm(forms.Form):
    name = forms.CharField(max_length=80, label="Room name")
    topic = forms.CharField(max_length=200, required=False)


class SignupForm(UserCreationForm):
    """Django's own sign-up form: username, password, and the password validators."""
