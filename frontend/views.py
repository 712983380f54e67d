from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from accounts.access import public


def home(request):
    return render(request, "frontend/home.html")


@public
def healthz(request):
    """For nginx and the deploy scripts: the process answers and its database does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
