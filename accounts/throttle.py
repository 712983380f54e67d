"""The sign-in throttle on an address that fails at many accounts.

django-axes locks an account after AXES_FAILURE_LIMIT failures, from every address. It never locks an
address: a council's or a hospital's staff share one NAT address, and one person's wrong passwords must
not lock out the rest. What an address alone suggests is spraying (one common password tried across many
accounts, staying under each account's limit), and that is slowed down, not stopped: once an address has
failed at TAC_SIGN_IN_ADDRESS_ACCOUNTS different accounts within the cool-off (AXES_COOLOFF_TIME), it gets
one password checked per TAC_SIGN_IN_ADDRESS_DELAY_SECONDS. A colleague behind the same address is at
worst delayed, and the throttle ends by itself when the failures are older than the cool-off.

The failures are django-axes' own records (AccessAttempt: one row per account, address and browser, with
the time of its latest failure), which it keeps for the cool-off and no longer; `ip_address` is indexed.
The address is the one the audit trail records (teamaroundchild/proxy.py).
"""

from __future__ import annotations

import math

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone


def sign_in_wait_seconds(*, ip: str | None) -> int:
    """How long the address must wait before its next password is checked; 0 if it need not."""
    if ip is None:
        return 0
    now = timezone.now()
    recent = AccessAttempt.objects.filter(ip_address=ip, attempt_time__gt=now - settings.AXES_COOLOFF_TIME)
    seen = recent.aggregate(accounts=Count("username", distinct=True), latest=Max("attempt_time"))
    if seen["accounts"] < settings.TAC_SIGN_IN_ADDRESS_ACCOUNTS:
        return 0
    remaining = settings.TAC_SIGN_IN_ADDRESS_DELAY_SECONDS - (now - seen["latest"]).total_seconds()
    return max(0, math.ceil(remaining))
