"""Every state change of agencies, professionals, credentials, 2FA and invitations. Each one writes its
audit event in the same transaction, and the ones that end access tell open sockets after commit."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import audit_record

from . import signals
from .models import Agency, IdentityKey, Invitation, Professional
from .schemas import KeyEnrolment, PasswordSecrets, PublicIdentity

BACKUP_CODE_COUNT = 10
SESSION_GENERATION_KEY = "tac_session_generation"
OTP_VERIFIED_AT_KEY = "tac_otp_verified_at"


def agency_create(*, name: str, kind: str, actor: Professional | None = None) -> Agency:
    with transaction.atomic():
        agency = Agency(name=name, kind=kind)
        agency.full_clean()
        agency.save()
        audit_record(kind="agency.created", actor=actor, target=agency, data={"kind": kind})
    return agency


def _identity_key_add(*, professional: Professional, identity: PublicIdentity, wrapped_secret: bytes) -> IdentityKey:
    now = timezone.now()
    previous = professional.identity_keys.filter(replaced_at__isnull=True).select_for_update().first()
    if previous is not None:
        previous.replaced_at = now
        previous.save(update_fields=["replaced_at"])
    return IdentityKey.objects.create(
        professional=professional,
        version=(previous.version + 1) if previous else 1,
        sign_public=identity.sign_public,
        box_public=identity.box_public,
        binding_signature=identity.binding_signature,
        wrapped_secret=wrapped_secret,
        created_at=now,
    )


def _apply_password_secrets(professional: Professional, password: PasswordSecrets) -> None:
    professional.set_password(password.auth_key)
    professional.kdf_salt = password.salt
    professional.kdf_opslimit = password.opslimit
    professional.kdf_memlimit = password.memlimit


def professional_create(
    *,
    email: str,
    full_name: str,
    job_title: str,
    agency: Agency,
    enrolment: KeyEnrolment,
    public_id: uuid.UUID,
    role: str = Professional.Role.PRACTITIONER,
    is_agency_admin: bool = False,
    is_staff: bool = False,
    actor: Professional | None = None,
    actor_label: str = "",
    request=None,
) -> Professional:
    """Create an account with keys already made by its owner's client (browser, CLI or seed)."""
    with transaction.atomic():
        professional = Professional(
            public_id=public_id,
            email=email.strip().lower(),
            full_name=full_name,
            job_title=job_title,
            agency=agency,
            role=role,
            is_agency_admin=is_agency_admin,
            is_staff=is_staff,
            is_superuser=is_staff,
        )
        _apply_password_secrets(professional, enrolment.secrets)
        professional.full_clean()
        professional.save()
        _identity_key_add(
            professional=professional, identity=enrolment.identity, wrapped_secret=enrolment.secrets.wrapped_secret
        )
        audit_record(
            kind="account.created",
            actor=actor,
            actor_label=actor_label,
            request=request,
            target=professional,
            data={"agency_id": agency.pk, "role": role, "agency_admin": is_agency_admin, "site_admin": is_staff},
        )
    return professional


def professional_create_with_password(*, password: str, **fields) -> Professional:
    """For the demo seed and `manage.py tac_user`: derive keys in Python exactly as a browser would."""
    public_id = uuid.uuid4()
    enrolment, _identity = KeyEnrolment.from_password(
        password=password,
        public_id=public_id,
        opslimit=settings.TAC_KDF_OPSLIMIT,
        memlimit=settings.TAC_KDF_MEMLIMIT,
    )
    return professional_create(enrolment=enrolment, public_id=public_id, **fields)


def professional_admin_change(
    *, site_admin: Professional, professional: Professional, changed_fields: list[str], request=None
) -> None:
    """Save a site administrator's edit from the Django admin (accounts/admin.py), which has already
    applied the form to `professional`.

    An email address decides where password reset links go, so a changed one is audited with both
    addresses and the OLD address is told after commit: if the change was not asked for, the owner
    hears of it at the address they still read."""
    with transaction.atomic():
        old_email = Professional.objects.select_for_update().values_list("email", flat=True).get(pk=professional.pk)
        professional.full_clean()
        professional.save()
        audit_record(kind="account.changed", actor=site_admin, request=request, target=professional,
                     data={"fields": sorted(changed_fields)})
        if professional.email != old_email:
            event = audit_record(kind="account.email_changed", actor=site_admin, request=request,
                                 target=professional, data={"old": old_email, "new": professional.email})
            # The account's own details only: nothing about any workspace or child.
            body = render_to_string(
                "accounts/email/email_changed.txt",
                {"full_name": professional.full_name, "old_email": old_email, "new_email": professional.email,
                 "when": event.occurred_at},
            )
            transaction.on_commit(
                lambda: send_mail(
                    "The email address of your Team Around the Child account was changed",
                    body,
                    settings.DEFAULT_FROM_EMAIL,
                    [old_email],
                )
            )


# --- sign-in, sessions ------------------------------------------------------------------------------


def sign_in_record(*, request, professional: Professional) -> None:
    """After django.contrib.auth.login: remember the session generation, audit the sign-in."""
    request.session[SESSION_GENERATION_KEY] = professional.session_generation
    with transaction.atomic():
        audit_record(kind="auth.sign_in", actor=professional, request=request, target=professional)


def sign_in_failure_record(*, request, email: str, locked_out: bool = False) -> None:
    # The address is kept as typed (lowercased): it may name no account, and that is worth seeing too.
    with transaction.atomic():
        audit_record(
            kind="auth.locked_out" if locked_out else "auth.sign_in_failed",
            request=request,
            actor_label=email.strip().lower()[:254],
        )


def sign_out_record(*, request, professional: Professional, session_key: str | None) -> None:
    """After the session `session_key` ended: audit the sign-out and close the sockets it opened (other
    sessions stay signed in)."""
    with transaction.atomic():
        audit_record(kind="auth.sign_out", actor=professional, request=request, target=professional)
        signals.sessions_revoked.send(Professional, professional=professional,
                                      payload={"reason": "signed out", "only_session": session_fingerprint(session_key)})


def session_fingerprint(session_key: str | None) -> str:
    """Names a session in an event without putting its key through Redis."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()


def _sessions_revoke(professional: Professional, reason: str, *, keep_request=None) -> None:
    """End every session and socket of the account, except (optionally) the one making the request."""
    Professional.objects.filter(pk=professional.pk).update(session_generation=F("session_generation") + 1)
    professional.refresh_from_db(fields=["session_generation"])
    payload = {"reason": reason}
    if keep_request is not None:
        keep_request.session[SESSION_GENERATION_KEY] = professional.session_generation
        payload["keep_session"] = session_fingerprint(keep_request.session.session_key)
    signals.sessions_revoked.send(Professional, professional=professional, payload=payload)


def sessions_end_all(*, professional: Professional, request=None) -> None:
    """Sign out of every session, this one included, and close every socket."""
    with transaction.atomic():
        _sessions_revoke(professional, "signed out everywhere")
        audit_record(kind="auth.sign_out_everywhere", actor=professional, request=request, target=professional)


# --- two-factor ---------------------------------------------------------------------------------------


def totp_enrolment_start(*, professional: Professional) -> TOTPDevice:
    """A fresh, unconfirmed authenticator for the enrolment page. Nothing is audited until confirmed."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=professional, confirmed=False).delete()
        return TOTPDevice.objects.create(user=professional, name="Authenticator app", confirmed=False)


def _backup_codes_replace(professional: Professional) -> list[str]:
    StaticDevice.objects.filter(user=professional).delete()
    device = StaticDevice.objects.create(user=professional, name="Backup codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def _otp_mark_verified(request, device) -> None:
    otp_login(request, device)
    request.session[OTP_VERIFIED_AT_KEY] = timezone.now().timestamp()


def totp_enrolment_confirm(*, request, professional: Professional, device: TOTPDevice, token: str) -> list[str] | None:
    """Confirm the authenticator with a first code. Returns the new backup codes, or None if the code was
    wrong. Any earlier authenticator of the account is replaced."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=professional, confirmed=False)
        if not device.verify_token(token):
            audit_record(kind="2fa.enrolment_failed", actor=professional, request=request, target=professional)
            return None
        TOTPDevice.objects.filter(user=professional, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _backup_codes_replace(professional)
        audit_record(kind="2fa.enrolled", actor=professional, request=request, target=professional)
    _otp_mark_verified(request, device)
    return codes


OTP_THROTTLED = "throttled"


def _otp_device_for_token(*, professional: Professional, token: str) -> TOTPDevice | StaticDevice | str | None:
    """The account's confirmed device that accepts this TOTP code or backup code, OTP_THROTTLED while
    django-otp's back-off holds, or None. django-otp records every attempt on the device (a failure moves
    the back-off on, a backup code is deleted, a TOTP code cannot be used twice), so call this inside a
    transaction that commits whatever the answer: a rolled-back failure would not slow the next guess."""
    token = token.strip().replace(" ", "").replace("-", "")
    totp_devices = list(TOTPDevice.objects.filter(user=professional, confirmed=True))
    if token.isdigit() and totp_devices and not any(d.verify_is_allowed()[0] for d in totp_devices):
        # django-otp's back-off after wrong codes: say so, rather than call a right code wrong.
        return OTP_THROTTLED
    for device in totp_devices:
        if device.verify_token(token):
            return device
    for device in StaticDevice.objects.filter(user=professional, confirmed=True):
        if device.verify_token(token.lower()):
            return device
    return None


def second_factor_enrolled(*, professional: Professional) -> bool:
    """Whether the account has a confirmed authenticator or backup codes. Only a new account that has
    not enrolled yet, or one whose agency administrator reset its 2FA (two_factor_reset), has neither."""
    return (TOTPDevice.objects.filter(user=professional, confirmed=True).exists()
            or StaticDevice.objects.filter(user=professional, confirmed=True).exists())


def otp_verify(*, request, professional: Professional, token: str) -> bool | str:
    """Check a TOTP code or a backup code. A backup code is used up (django-otp deletes it). django-otp's
    throttling slows repeated failures per device exponentially, so guessing codes is impractical."""
    with transaction.atomic():
        device = _otp_device_for_token(professional=professional, token=token)
        if device == OTP_THROTTLED:
            audit_record(kind="2fa.throttled", actor=professional, request=request, target=professional)
            return OTP_THROTTLED
        if device is None:
            audit_record(kind="2fa.failed", actor=professional, request=request, target=professional)
            return False
        if isinstance(device, StaticDevice):
            audit_record(
                kind="2fa.backup_code_used",
                actor=professional,
                request=request,
                target=professional,
                data={"backup_codes_left": device.token_set.count()},
            )
        else:
            audit_record(kind="2fa.verified", actor=professional, request=request, target=professional)
        _otp_mark_verified(request, device)
    return True


def backup_codes_regenerate(*, request, professional: Professional) -> list[str]:
    with transaction.atomic():
        codes = _backup_codes_replace(professional)
        audit_record(kind="2fa.backup_codes_regenerated", actor=professional, request=request, target=professional)
    return codes


def two_factor_reset(*, admin: Professional, professional: Professional, request=None) -> None:
    """An agency admin resets a colleague's lost authenticator: they enrol again at next sign-in."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=professional).delete()
        StaticDevice.objects.filter(user=professional).delete()
        _sessions_revoke(professional, "two-factor authentication was reset")
        audit_record(kind="2fa.reset", actor=admin, request=request, target=professional)


# --- passwords ----------------------------------------------------------------------------------------


def password_change(*, request, professional: Professional, current_auth_key: str, new: PasswordSecrets) -> None:
    """The browser re-sealed the same private keys under the new wrapping key; the keys do not change,
    so no workspace needs re-keying. Other sessions end (Django's session hash), this one stays."""
    if not professional.check_password(current_auth_key):
        raise ValidationError("Your current password is wrong")
    with transaction.atomic():
        professional = Professional.objects.select_for_update().get(pk=professional.pk)
        key = professional.identity_keys.select_for_update().get(replaced_at__isnull=True)
        _apply_password_secrets(professional, new)
        professional.save()
        key.wrapped_secret = new.wrapped_secret
        key.save(update_fields=["wrapped_secret"])
        _sessions_revoke(professional, "password changed in another session", keep_request=request)
        audit_record(kind="auth.password_changed", actor=professional, request=request, target=professional)
    update_session_auth_hash(request, professional)


# Why a reset's security code was refused (as audited) and what the person is told.
RESET_CODE_REFUSALS = {
    "no code": "Enter the security code from your authenticator app, or one of your backup codes",
    "wrong code": "The security code is not correct, or has been used. Enter the newest code from your "
                  "authenticator app, or a backup code you have not used",
    "throttled": "Too many wrong codes in a row. Wait a few seconds, then enter the newest code",
}
OTP_REFUSED = "otp_refused"  # the ValidationError's code, and the reset page's JSON error


def password_reset_complete(
    *, professional: Professional, enrolment: KeyEnrolment, otp_token: str, request=None
) -> None:
    """A forgotten password loses the wrapping key and so the private keys: the browser made new ones.
    The account is flagged for re-keying by its workspaces, and every session and socket ends.

    The emailed link alone is not enough: whoever can change or read the account's email (a site
    administrator, a hijacked mailbox) could otherwise take the account over. The reset also needs a
    current TOTP code or an unused backup code (used up here), checked with django-otp's throttling like
    a sign-in. An account with no confirmed 2FA device at all (its agency administrator reset it, which is
    audited, or it never enrolled) resets without one and enrols again at its next sign-in.

    A refused code raises ValidationError (code OTP_REFUSED) after its own transaction has committed the
    audit event and django-otp's record of the failure; nothing else changes."""
    with transaction.atomic():
        professional = Professional.objects.select_for_update().get(pk=professional.pk)
        refused, second_factor = None, "none"
        if second_factor_enrolled(professional=professional):
            token = otp_token.strip()
            device = _otp_device_for_token(professional=professional, token=token) if token else None
            if not token:
                refused = "no code"
            elif device == OTP_THROTTLED:
                refused = "throttled"
            elif device is None:
                refused = "wrong code"
            else:
                second_factor = "backup_code" if isinstance(device, StaticDevice) else "totp"
        if refused is not None:
            audit_record(kind="auth.password_reset_failed", actor=professional, request=request,
                         target=professional, data={"reason": refused})
        else:
            _apply_password_secrets(professional, enrolment.secrets)
            professional.needs_rekey = True
            professional.save()
            key = _identity_key_add(
                professional=professional, identity=enrolment.identity, wrapped_secret=enrolment.secrets.wrapped_secret
            )
            _sessions_revoke(professional, "password reset")
            audit_record(
                kind="auth.password_reset",
                actor=professional,
                request=request,
                target=professional,
                data={"identity_key_version": key.version, "second_factor": second_factor},
            )
    if refused is not None:
        raise ValidationError(RESET_CODE_REFUSALS[refused], code=OTP_REFUSED)


# --- invitations and offboarding ----------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The roles an agency administrator may give their own staff.
AGENCY_ROLES = (Professional.Role.PRACTITIONER, Professional.Role.MANAGER)


def invitation_create(
    *,
    admin: Professional,
    email: str,
    full_name: str,
    job_title: str,
    role: str,
    is_agency_admin: bool,
    accept_url_for,
    request=None,
) -> tuple[Invitation, str]:
    """Invite a professional to the admin's own agency. Returns the invitation and its one-time token;
    the token is emailed (after commit) and stored only as a hash."""
    email = email.strip().lower()
    if role not in AGENCY_ROLES:
        # The partnership role sees every agency's dashboards: a site administrator grants it
        # (`manage.py tac_user --role partnership`), never one agency's admin.
        raise ValidationError("Choose practitioner or manager")
    if Professional.objects.filter(email__iexact=email).exists():
        raise ValidationError("An account with this email address already exists")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Invitation.objects.filter(email__iexact=email, agency=admin.agency, accepted_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        invitation = Invitation(
            token_hash=_token_hash(token),
            email=email,
            full_name=full_name,
            job_title=job_title,
            role=role,
            is_agency_admin=is_agency_admin,
            agency=admin.agency,
            invited_by=admin,
            expires_at=timezone.now() + settings.TAC_INVITATION_TTL,
        )
        invitation.full_clean()
        invitation.save()
        audit_record(
            kind="invitation.created",
            actor=admin,
            request=request,
            target=invitation,
            data={"email": email, "agency_id": admin.agency_id, "role": role},
        )
        body = render_to_string(
            "accounts/email/invitation.txt",
            {"invitation": invitation, "url": accept_url_for(token), "hours": int(settings.TAC_INVITATION_TTL.total_seconds() // 3600)},
        )
        transaction.on_commit(
            lambda: send_mail(
                "You are invited to Team Around the Child", body, settings.DEFAULT_FROM_EMAIL, [email]
            )
        )
    return invitation, token


def invitation_revoke(*, admin: Professional, invitation: Invitation, request=None) -> None:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk, agency=admin.agency)
        if invitation.state != "pending":
            raise ValidationError(f"This invitation is already {invitation.state}")
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(kind="invitation.revoked", actor=admin, request=request, target=invitation)


def invitation_for_token(token: str) -> Invitation | None:
    return Invitation.objects.select_related("agency", "invited_by").filter(token_hash=_token_hash(token)).first()


def invitation_accept(*, token: str, payload, request=None) -> Professional:
    """Create the invitee's account from the keys their browser made. Single use: the row is locked and
    marked accepted in the same transaction."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(token_hash=_token_hash(token)).first()
        if invitation is None:
            raise ValidationError("This invitation link is not valid")
        if invitation.state != "pending":
            raise ValidationError(f"This invitation has {invitation.state_sentence}")
        enrolment = KeyEnrolment.parse(payload, public_id=invitation.public_id)
        professional = professional_create(
            email=invitation.email,
            full_name=invitation.full_name,
            job_title=invitation.job_title,
            agency=invitation.agency,
            role=invitation.role,
            is_agency_admin=invitation.is_agency_admin,
            enrolment=enrolment,
            public_id=invitation.public_id,
            actor=None,
            request=request,
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = professional
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(kind="invitation.accepted", actor=professional, request=request, target=invitation)
    return professional


def professional_offboard(*, admin: Professional, professional: Professional, request=None) -> None:
    """End all access at once: the account is disabled, its sessions end and its sockets close."""
    if professional.pk == admin.pk:
        raise ValidationError("You cannot offboard yourself")
    with transaction.atomic():
        professional = Professional.objects.select_for_update().get(pk=professional.pk)
        if not professional.is_active:
            raise ValidationError("This account is already offboarded")
        professional.is_active = False
        professional.offboarded_at = timezone.now()
        professional.save(update_fields=["is_active", "offboarded_at"])
        _sessions_revoke(professional, "account offboarded")
        # Before this function's own audit record: every service takes workspace row locks, then those
        # workspaces' audit chains, then the accounts chain, so two transactions never wait on each other
        # in opposite orders (audit/README.md). messaging ends the memberships (messaging/handlers.py).
        signals.professional_offboarded.send(Professional, professional=professional, actor=admin, request=request)
        audit_record(kind="account.offboarded", actor=admin, request=request, target=professional)
