"""`make run`'s embedded database is SQLite, and the live path's statements are hand-written
(teamaroundchild/sql.py): they must run there too. This walks the quick start in a subprocess on a
fresh SQLite file (migrate, seed_demo, which stores its posts through post_create and reads them back
with post_list), then asks the socket's membership checks about the seeded workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECKS = """
from django.contrib.sessions.backends.db import SessionStore as DjangosStore
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import storage
from accounts.models import Professional
from accounts.sessions import SessionStore
from audit.selectors import audit_verify
from messaging import access, selectors
from messaging.models import Membership, Workspace

workspace = Workspace.objects.filter(current_rag="red").order_by("pk").first()
lead = Professional.objects.get(pk=workspace.lead_id)
outsider = Professional.objects.exclude(memberships__workspace=workspace).first()
found = access.workspace_if_member(lead.pk, workspace.public_id)
posts = selectors.post_list(professional=lead, workspace=workspace)
concerns = selectors.post_list(professional=lead, workspace=workspace, kind="concern")
device = TOTPDevice.objects.filter(user=lead, confirmed=True).first()
door = storage.active_user_and_device(lead.pk, TOTPDevice, device.pk)
session = SessionStore()
session["some"] = "thing"
session.create()
print(json.dumps({
    "door": [door[0].pk == lead.pk and door[0].email == lead.email and door[0].date_joined == lead.date_joined, door[1]],
    "door_out_of_range": [storage.active_user_and_device(2**70, TOTPDevice, device.pk),
                          storage.active_user_and_device(lead.pk, TOTPDevice, 2**70)],
    "session": [SessionStore(session.session_key).load(), DjangosStore(session.session_key).load()],
    "found": [found.pk, str(found.public_id), found.roster_version, found.reference],
    "expected": [workspace.pk, str(workspace.public_id), workspace.roster_version, workspace.reference],
    "outsider_found": access.workspace_if_member(outsider.pk, workspace.public_id) is not None,
    "lead_member": access.is_active_member(lead.pk, workspace.pk),
    "outsider_member": access.is_active_member(outsider.pk, workspace.pk),
    "seqs": [p["seq"] for p in posts],
    "stored": list(workspace.posts.order_by("seq").values_list("seq", flat=True)),
    "post_ids_ok": all(str(p["post_id"]).count("-") == 4 for p in posts),
    "workspace_ids": sorted({p["workspace"] for p in posts}),
    "concern_kinds": sorted({p["kind"] for p in concerns}),
    "audit_ok": not audit_verify().problems,
}))
"""

# The quick start's background work: no queue on SQLite, the periodic jobs run by `tac_worker` in-process.
JOBS = """
from django.utils import timezone
from messaging.models import ConcernSummary
from notifications.models import Notification

print(json.dumps({
    "breached": ConcernSummary.objects.filter(breached_at__isnull=False, rag="red").count(),
    "told": sorted(set(Notification.objects.filter(kind="concern_breached").values_list("recipient__email", flat=True))),
    "overdue": ConcernSummary.objects.filter(responded_at__isnull=True, breached_at__isnull=True, retracted=False,
                                             due_at__lte=timezone.now()).count(),
}))
"""


def run(args: list[str], env: dict) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_it_runs_the_live_path_statements_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="teamaroundchild.settings.dev", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
               SECRET_KEY="sqlite-quick-start-test", TAC_KDF_OPSLIMIT="1", TAC_KDF_MEMLIMIT="8388608",
               # seed_demo pins its custodian key: here, not over the developer's own var/pins.
               TAC_PIN_DIR=str(tmp_path / "pins"))
    run(["migrate", "--noinput"], env)
    run(["seed_demo", "--credentials", str(tmp_path / "creds.json")], env)
    out = json.loads(run(["shell", "-c", "import json\n" + CHECKS], env).strip().splitlines()[-1])
    assert out["found"] == out["expected"]
    # The websocket door's statements (accounts/storage.py), ids beyond SQLite's integers included.
    assert out["door"] == [True, True] and out["door_out_of_range"] == [None, None]
    assert out["session"] == [{"some": "thing"}] * 2
    assert out["outsider_found"] is False
    assert (out["lead_member"], out["outsider_member"]) == (True, False)
    assert out["seqs"] == out["stored"] and len(out["seqs"]) >= 5
    assert out["post_ids_ok"] and out["workspace_ids"] == [out["expected"][1]]
    assert out["concern_kinds"] == ["concern"]
    assert out["audit_ok"]
    assert json.loads((tmp_path / "pins" / "custodian.json").read_text())["keys"][0]["label"] == "Demo custodian"

    # A worker's pass: the clocks run in-process on SQLite and leave nothing due unannounced.
    assert "running the periodic jobs" in run(["tac_worker", "--once"], env)
    jobs = json.loads(run(["shell", "-c", "import json\n" + JOBS], env).strip().splitlines()[-1])
    assert jobs["breached"] >= 1 and jobs["overdue"] == 0
    assert {"sam.lead@demo.tac", "morgan.manager@demo.tac"} <= set(jobs["told"])
