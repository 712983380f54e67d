from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from .access import PASSWORD_ONLY, PUBLIC, view_access
from .services import SESSION_GENERATION_KEY


class SessionGenerationMiddleware:
    """Ends a session whose account has since signed out everywhere, been offboarded or reset."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and request.session.get(SESSION_GENERATION_KEY) != user.session_generation:
            logout(request)
        return self.get_response(request)


def wants_json(request) -> bool:
    return request.path.startswith("/api/") or "/api/" in request.path


class Require2FAMiddleware:
    """No page, API call or admin view works for a session that has not passed 2FA, unless the view is
    marked @public or @password_only (accounts/access.py). Deny by default."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        access = view_access(view_func)
        if access == PUBLIC:
            return None
        user = request.user
        if not user.is_authenticated:
            if wants_json(request):
                return JsonResponse({"error": "not_signed_in", "reason": "Sign in first."}, status=401)
            return redirect(f"{reverse('accounts:login')}?{urlencode({'next': request.get_full_path()})}")
        if access == PASSWORD_ONLY or user.is_verified():
            return None
        if wants_json(request):
            return JsonResponse(
                {"error": "2fa_required", "reason": "Complete two-factor authentication first."}, status=403
            )
        return redirect(f"{reverse('accounts:two_factor')}?{urlencode({'next': request.get_full_path()})}")
