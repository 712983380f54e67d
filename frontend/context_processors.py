from django.conf import settings


def kdf(request):
    """The Argon2id cost browsers use for new passwords (accounts/README.md)."""
    return {"kdf_opslimit": settings.TAC_KDF_OPSLIMIT, "kdf_memlimit": settings.TAC_KDF_MEMLIMIT}
