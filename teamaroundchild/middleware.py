"""Headers on every answer Django gives. Static files never get here: WhiteNoise answers them first, and
nginx in front of it (deploy/nginx/tac.conf)."""

from django.conf import settings

# Sign-in, 2FA, salts, sealed keys, invitations and resets live under /accounts/; the JSON API under
# /api/ (and /accounts/api/). Their answers are private even to someone not signed in yet.
PRIVATE_PREFIXES = ("/accounts/", "/api/", "/admin/")


def is_private(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated) or request.path_info.startswith(PRIVATE_PREFIXES)


class PrivateResponseMiddleware:
    """Cache-Control: no-store on what a signed-in person sees (a page names children and professionals;
    /accounts/api/v1/me/keys holds the sealed private keys), so neither the browser's cache nor any shared
    one keeps it after sign-out on a shared clinical PC; and a Permissions-Policy denying powerful
    features to every page."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.permissions_policy = ", ".join(f"{feature}=()" for feature in settings.PERMISSIONS_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        if is_private(request):
            response["Cache-Control"] = "no-store"
        response.setdefault("Permissions-Policy", self.permissions_policy)
        return response
