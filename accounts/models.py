import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class Agency(models.Model):
    class Kind(models.TextChoices):
        CHILDRENS_SOCIAL_CARE = "childrens_social_care", "Children's social care"
        GP_PRACTICE = "gp_practice", "GP practice"
        MATERNITY = "maternity", "Maternity"
        HEALTH_VISITING = "health_visiting", "Health visiting"
        SCHOOL = "school", "School"
        POLICE = "police", "Police"
        CAMHS = "camhs", "CAMHS"
        HOUSING = "housing", "Housing"
        OTHER = "other", "Other"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProfessionalManager(BaseUserManager):
    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)

    def create_user(self, email, password=None, **extra):
        # Accounts are made by accounts.services (which derive keys as a browser would), not here: an
        # account with a raw Django password could never sign in, as the browser sends a derived key.
        raise NotImplementedError("use accounts.services.professional_create or `manage.py tac_user create`")

    create_superuser = create_user


class Professional(AbstractBaseUser, PermissionsMixin):
    class Role(models.TextChoices):
        PRACTITIONER = "practitioner", "Practitioner"
        MANAGER = "manager", "Manager"
        # A safeguarding partnership's oversight lead: the managers' dashboards over every agency.
        PARTNERSHIP = "partnership", "Safeguarding partnership"

    # A stable public identifier: bound into the identity key signature and the wrapped private keys.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200)
    job_title = models.CharField(max_length=200)
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="professionals")
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.PRACTITIONER)
    is_agency_admin = models.BooleanField(default=False)
    is_staff = models.BooleanField(default=False, help_text="Site administrator: may use the Django admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    offboarded_at = models.DateTimeField(null=True, blank=True)

    # Argon2id parameters of the client-side key derivation (accounts/README.md). Not secret.
    kdf_salt = models.BinaryField(max_length=16)
    kdf_opslimit = models.PositiveIntegerField()
    kdf_memlimit = models.PositiveBigIntegerField()

    # Bumped to end every session and socket of the account at once (sign out everywhere, offboarding).
    session_generation = models.PositiveIntegerField(default=0)
    # Set when a password reset replaced the identity keys: workspaces must re-wrap their keys for the
    # new public key before this professional can read them again.
    needs_rekey = models.BooleanField(default=False)

    objects = ProfessionalManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name", "job_title"]

    class Meta:
        ordering = ["full_name"]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.agency})"

    def current_identity_key(self):
        return self.identity_keys.filter(replaced_at__isnull=True).order_by("-version").first()


class IdentityKey(models.Model):
    """A professional's public keys and their private keys sealed under the client-side wrapping key.

    Old versions are kept (replaced_at set) so signatures made with them can still be checked.
    """

    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="identity_keys")
    version = models.PositiveIntegerField()
    sign_public = models.BinaryField(max_length=32)
    box_public = models.BinaryField(max_length=32)
    binding_signature = models.BinaryField(max_length=64)
    wrapped_secret = models.BinaryField(max_length=104)
    created_at = models.DateTimeField(default=timezone.now)
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["professional", "version"], name="identity_key_version_unique"),
            models.UniqueConstraint(
                fields=["professional"],
                condition=models.Q(replaced_at__isnull=True),
                name="one_current_identity_key",
            ),
        ]

    def __str__(self) -> str:
        return f"identity key v{self.version} of {self.professional_id}"


class Invitation(models.Model):
    """An agency admin's invitation to the service. The link's token is stored only as its SHA-256."""

    token_hash = models.CharField(max_length=64, unique=True)
    # The account's public id, fixed now so the invitee's browser can bind its keys to it before the
    # account exists.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField()
    full_name = models.CharField(max_length=200)
    job_title = models.CharField(max_length=200)
    role = models.CharField(max_length=32, choices=Professional.Role.choices, default=Professional.Role.PRACTITIONER)
    is_agency_admin = models.BooleanField(default=False)
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="invitations")
    invited_by = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="invitations_sent")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.OneToOneField(
        Professional, null=True, blank=True, on_delete=models.PROTECT, related_name="invitation"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation for {self.email}"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def state_sentence(self) -> str:
        return {
            "accepted": "already been used",
            "revoked": "been withdrawn",
            "expired": "expired",
            "pending": "not been used yet",
        }[self.state]
