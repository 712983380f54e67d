from django import forms

from .models import Professional


class SignInForm(forms.Form):
    """The browser posts the email and the auth key derived from the password; never the password."""

    email = forms.EmailField(error_messages={"required": "Enter your email address"})
    auth_key = forms.RegexField(
        regex=r"^[0-9a-f]{64}$",
        error_messages={
            "required": "Enter your password",
            "invalid": "Your browser did not prepare the sign-in. Reload the page and try again.",
        },
    )


class OTPForm(forms.Form):
    token = forms.CharField(
        max_length=20,
        error_messages={"required": "Enter the 6-digit code from your authenticator app, or a backup code"},
    )


class InvitationForm(forms.Form):
    full_name = forms.CharField(max_length=200, error_messages={"required": "Enter their full name"})
    email = forms.EmailField(error_messages={"required": "Enter their work email address"})
    job_title = forms.CharField(max_length=200, error_messages={"required": "Enter their job title"})
    role = forms.ChoiceField(choices=[(r.value, r.label) for r in (Professional.Role.PRACTITIONER, Professional.Role.MANAGER)],
                             initial=Professional.Role.PRACTITIONER)
    is_agency_admin = forms.BooleanField(required=False, label="Can invite and offboard staff of this agency")


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(error_messages={"required": "Enter your email address"})
