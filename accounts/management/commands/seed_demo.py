"""`make run` seeds a demo: agencies and professionals with printed passwords and TOTP secrets, a
custodian key, and two workspaces whose posts are real ciphertext.

Passwords are random, made on the first run and kept in .demo-credentials (git-ignored, mode 600) so a
second `make run` prints the same logins. Keys are derived with the same Python code a browser mirrors.
The workspaces are made as the members' clients would make them: each demo professional's identity is
opened with their password, and tacclient seals, signs and checks everything the services store (the
same steps as tacclient.client.TacClient, without the HTTP). Every run is idempotent: a workspace that
exists (fixed ids) is left alone.
"""

import base64
import datetime as dt
import json
import os
import secrets
import uuid
from pathlib import Path

import time_machine
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Agency, Professional
from accounts.services import agency_create, professional_create_with_password
from messaging import custodian, selectors, services
from messaging.models import CustodianKey, Post, Workspace
from messaging.schemas import EpochBundle, PostEnvelope
from tacclient import crypto
from tacclient.client import Workspace as VerifiedWorkspace
from tacclient.client import workspace_from_detail
from tacclient.record import Record
from tacclient.workspace import (
    CustodianPin,
    MemberKey,
    epoch_bundle,
    invite_signature,
    plan_epoch_members,
    seal_post,
)

AGENCIES = [
    ("Northshire Children's Social Care", Agency.Kind.CHILDRENS_SOCIAL_CARE),
    ("Riverside Medical Practice", Agency.Kind.GP_PRACTICE),
    ("Northshire Maternity Service", Agency.Kind.MATERNITY),
    ("St Anne's Primary School", Agency.Kind.SCHOOL),
    ("Northshire Police", Agency.Kind.POLICE),
]

PEOPLE = [
    # email, name, job title, agency index, role, agency admin, site admin
    ("sam.lead@demo.tac", "Sam Okafor", "Social worker", 0, "practitioner", False, False),
    ("morgan.manager@demo.tac", "Morgan Price", "Team manager", 0, "manager", True, True),
    ("priya.gp@demo.tac", "Dr Priya Shah", "GP", 1, "practitioner", True, False),
    ("jo.midwife@demo.tac", "Jo Evans", "Community midwife", 2, "practitioner", True, False),
    ("alex.school@demo.tac", "Alex Brown", "Designated safeguarding lead", 3, "practitioner", True, False),
    ("chris.police@demo.tac", "DC Chris Hall", "Detective constable", 4, "practitioner", True, False),
]


class Command(BaseCommand):
    help = "Create the demo agencies and professionals (idempotent) and print their logins."

    def add_arguments(self, parser):
        parser.add_argument("--credentials", default=str(Path(settings.BASE_DIR) / ".demo-credentials"))

    def handle(self, *args, **options):
        path = Path(options["credentials"])
        stored = json.loads(path.read_text()) if path.exists() else {}
        with transaction.atomic():
            agencies = []
            for name, kind in AGENCIES:
                agencies.append(Agency.objects.filter(name=name).first() or agency_create(name=name, kind=kind))
            for email, name, title, agency_index, role, agency_admin, site_admin in PEOPLE:
                if Professional.objects.filter(email=email).exists():
                    continue
                password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
                user = professional_create_with_password(
                    password=password, email=email, full_name=name, job_title=title,
                    agency=agencies[agency_index], role=role, is_agency_admin=agency_admin, is_staff=site_admin,
                    actor_label="manage.py seed_demo",
                )
                device = TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
                stored[email] = {
                    "password": password,
                    "totp_secret": base64.b32encode(device.bin_key).decode().rstrip("="),
                }
        path.write_text(json.dumps(stored, indent=2))
        os.chmod(path, 0o600)
        self.stdout.write("\nDemo logins (sign in at http://127.0.0.1:8000/accounts/sign-in/):\n")
        for email, name, title, agency_index, *_ in PEOPLE:
            creds = stored.get(email)
            if creds is None:
                self.stdout.write(f"  {email}: created before {path} existed; its password is unknown")
                continue
            self.stdout.write(
                f"  {name:16} {title:30} {AGENCIES[agency_index][0]}\n"
                f"      email {email}   password {creds['password']}   TOTP secret {creds['totp_secret']}"
            )
        self.stdout.write(
            "\nAdd a TOTP secret to an authenticator app, or print the current code with:\n"
            "  .venv/bin/python manage.py demo_totp <email>\n"
        )
        self.seed_custodian()
        self.seed_workspaces(stored)

    def seed_custodian(self):
        if CustodianKey.objects.filter(is_current=True).exists() and custodian.pin_read():
            return
        # A real site runs `manage.py custodian_key_create`, which prints the private key as 2-of-3 shares
        # for three custodians. The demo keeps no shares: its workspaces cannot be recovered.
        identity = crypto.custodian_identity(os.urandom(32))
        custodian.custodian_key_install(box_public=identity.box_public, sign_public=identity.sign_public,
                                        label="Demo custodian", new_pin=True, actor_label="manage.py seed_demo")
        self.stdout.write("Demo custodian key installed; its private key was discarded (demo workspaces cannot "
                          "be recovered by a custodian).")

    def seed_workspaces(self, stored: dict):
        made = []
        identities: dict[str, DemoClient] = {}
        for spec in DEMO_WORKSPACES:
            workspace_id = uuid.uuid5(DEMO_NAMESPACE, spec["slug"])
            existing = Workspace.objects.filter(public_id=workspace_id).first()
            if existing is not None:
                made.append((existing, False))
                continue
            people = [spec["lead"], *spec["members"]]
            missing = [email for email in people if email not in stored]
            if missing:
                self.stdout.write(f"Demo workspace {spec['slug']} skipped: no stored password for {', '.join(missing)}")
                continue
            try:
                for email in people:
                    if email not in identities:
                        identities[email] = DemoClient(Professional.objects.get(email=email),
                                                       stored[email]["password"])
            except crypto.DecryptionError:
                self.stdout.write(f"Demo workspace {spec['slug']} skipped: the stored password of {email} does not "
                                  f"open its keys")
                continue
            # A thread with a past: the workspace was opened some days ago, and its posts were made then, so
            # an action the server only takes with a due date from today on can be overdue now.
            opened = timezone.now() - dt.timedelta(days=spec.get("opened_days_ago", 0))
            with transaction.atomic(), time_machine.travel(opened, tick=True):
                made.append((demo_workspace(workspace_id, spec, identities), True))
        if made:
            self.stdout.write("\nDemo workspaces (content end-to-end encrypted; sign in as sam.lead@demo.tac to read):")
            for workspace, new in made:
                posts = Post.objects.filter(workspace=workspace).count()
                self.stdout.write(f"  {workspace.reference}  {posts} posts{'  (new)' if new else ''}")
            self.stdout.write("")


# --- demo workspaces: the clients' steps, in process ------------------------------------------------------

DEMO_NAMESPACE = uuid.UUID("6f1d3c52-9a43-4b8e-9d0c-7a1e2b3c4d5e")


class DemoClient:
    """One demo professional's client without the HTTP: identity opened with their password (as at
    sign-in), workspace details read through the same selectors the API answers with, and checked by
    tacclient before anything is sealed."""

    def __init__(self, user: Professional, password: str):
        self.user = user
        key = user.current_identity_key()
        salt, ops, mem = bytes(user.kdf_salt), user.kdf_opslimit, user.kdf_memlimit
        wrap_key = crypto.derive_keys(password, salt, ops, mem).wrap_key
        self.identity = crypto.identity_unwrap(bytes(key.wrapped_secret), wrap_key,
                                               crypto.identity_wrap_ad(user.public_id, salt, ops, mem))

    def member_key(self, role: str) -> MemberKey:
        return MemberKey.from_card(selectors.professional_card(self.user), role)

    def verified(self, workspace: Workspace) -> VerifiedWorkspace:
        workspace.refresh_from_db()
        detail = selectors.workspace_detail(professional=self.user, workspace=workspace)
        detail["author_keys"] = selectors.author_keys(professional=self.user, workspace=workspace)
        return workspace_from_detail(json.loads(json.dumps(detail)), self.identity, my_id=self.user.public_id,
                                     pin=CustodianPin.parse(custodian.pin_read()))

    def record(self, workspace: Workspace, ws: VerifiedWorkspace) -> Record:
        record = Record(ws.keys, reference=ws.reference)
        for payload in selectors.post_list(professional=self.user, workspace=workspace, limit=10_000):
            record.add(json.loads(json.dumps(payload)))
        return record

    def post(self, workspace: Workspace, kind: str, body: dict, **fields) -> Post:
        """Sealed after the newest post this client verified, as a browser does."""
        ws = self.verified(workspace)
        epoch = ws.keys.current_epoch
        envelope = seal_post(identity=self.identity, author_id=self.user.public_id, workspace_id=ws.id, epoch=epoch,
                             epoch_key=ws.keys.epoch_keys[epoch], kind=kind, body=body,
                             prev=self.record(workspace, ws).last, **fields)
        return services.post_create(author=self.user, workspace=workspace, envelope=PostEnvelope.parse(envelope)).post

    def rotate(self, workspace: Workspace) -> None:
        """The lead's client admits those who accepted (invitations checked) and re-posts the details."""
        ws = self.verified(workspace)
        plan = plan_epoch_members(ws.keys, ws.cards, my_id=self.user.public_id,
                                  my_fingerprint=self.identity.fingerprint())
        details = self.record(workspace, ws).latest_details()
        bundle, _key = epoch_bundle(lead=self.identity, workspace_id=ws.id, epoch=ws.keys.current_epoch + 1,
                                    prev_manifest_hash=ws.keys.manifest_hashes[ws.keys.current_epoch],
                                    members=plan.members, custodian=CustodianPin.parse(custodian.pin_read()).current)
        services.epoch_rotate(lead=self.user, workspace=workspace, epoch=EpochBundle.parse(bundle))
        if details is not None:
            self.post(workspace, "details", details.body)


def demo_workspace(workspace_id: uuid.UUID, spec: dict, clients: dict[str, DemoClient]) -> Workspace:
    """Open, invite, accept, admit, then play the spec's thread. Precondition: inside transaction.atomic."""
    lead = clients[spec["lead"]]
    bundle, _key = epoch_bundle(lead=lead.identity, workspace_id=workspace_id, epoch=1,
                                prev_manifest_hash=crypto.ZERO_HASH, members=[lead.member_key("lead")],
                                custodian=CustodianPin.parse(custodian.pin_read()).current)
    workspace = services.workspace_create(lead=lead.user, workspace_id=workspace_id, epoch=EpochBundle.parse(bundle))
    lead.post(workspace, "details", {**spec["details"], "workspace": str(workspace_id),
                                     "reference": workspace.reference})
    for email in spec["members"]:
        member = clients[email]
        nonce = os.urandom(crypto.INVITE_NONCE_BYTES)
        signature = invite_signature(lead.identity, workspace_id, member.member_key("member"), "member",
                                     workspace.current_epoch, nonce)
        services.membership_invite(lead=lead.user, workspace=workspace, professional=member.user,
                                   invite_signature=base64.b64decode(signature), invite_nonce=nonce)
        services.membership_respond(professional=member.user, workspace=workspace, accept=True)
    lead.rotate(workspace)

    def post(email: str, kind: str, body: dict, **fields) -> Post:
        return clients[email].post(workspace, kind, body, **fields)

    spec["thread"](post, {email: clients[email].user.public_id for email in clients})
    return workspace


def _days(n: int) -> dt.date:
    return dt.date.today() + dt.timedelta(days=n)


def _leo_thread(post, ids):
    gp, midwife, school, lead = "priya.gp@demo.tac", "jo.midwife@demo.tac", "alex.school@demo.tac", "sam.lead@demo.tac"
    red = post(gp, "concern", {"category": "neglect", "detail": "Leo has missed his 2-year review and two "
                               "immunisation appointments. Mum has not answered three calls."}, rag="red")
    post(school, "concern", {"category": "school_attendance", "detail": "Nursery attendance 71% this half term; often "
                             "collected late and hungry."}, rag="amber")
    post(midwife, "acknowledgement", {}, target=red.post_id)
    visit = post(lead, "action", {"title": "Joint home visit with the midwife", "detail": "Check home conditions "
                                  "and talk to mum about the missed appointments."}, owner=ids[midwife], due=_days(3),
                 status="open")
    post(midwife, "action_status", {"note": "I will arrange it with the health visitor."}, target=visit.post_id,
         status="accepted")
    done = post(lead, "action", {"title": "Free school meals and breakfast club referral", "detail": ""},
                owner=ids[school], due=_days(7), status="open")
    post(school, "action_status", {"note": "Referral made; Leo starts breakfast club on Monday."},
         target=done.post_id, status="done")
    post(lead, "action_status", {"note": "Confirmed with the school office."}, target=done.post_id, status="confirmed")
    post(lead, "update", {"text": "Spoke to mum by phone: she is struggling since her partner left. She agreed to "
                          "an Early Help assessment."})
    post(lead, "decision", {"text": "TAC meeting 1: Early Help plan agreed; review in six weeks."})


def _ava_thread(post, ids):
    gp, school, lead = "priya.gp@demo.tac", "alex.school@demo.tac", "sam.lead@demo.tac"
    post(school, "concern", {"category": "mental_health", "detail": "Ava has been withdrawn in class and "
                             "said she does not want to go home."}, rag="amber")
    post(gp, "update", {"text": "Seen with dad for asthma review; no concerns noted at the appointment."})
    post(lead, "action", {"title": "Book a CAMHS consultation", "detail": "Ask the school nurse to join."},
         owner=ids[gp], due=_days(14), status="open")


DEMO_WORKSPACES = [
    {
        "slug": "demo-workspace-leo",
        "lead": "sam.lead@demo.tac",
        "members": ["priya.gp@demo.tac", "jo.midwife@demo.tac", "alex.school@demo.tac"],
        "details": {"name": "Leo Marsh", "dob": "2021-06-14", "nhs_number": "9434765919",
                    "address": "12 Willow Court, Northshire NS1 4AB",
                    "family": "Mother Kerry Marsh; a baby sister is due in March",
                    "notes": "Demo data: not a real child."},
        "thread": _leo_thread,
        "opened_days_ago": 6,  # the home visit was due three days later: three days overdue today
    },
    {
        "slug": "demo-workspace-ava",
        "lead": "sam.lead@demo.tac",
        "members": ["priya.gp@demo.tac", "alex.school@demo.tac"],
        "details": {"name": "Ava Collins", "dob": "2017-11-03", "nhs_number": "4010232137",
                    "address": "4 Mill Lane, Northshire NS3 9QT", "family": "Lives with dad and two brothers",
                    "notes": "Demo data: not a real child."},
        "thread": _ava_thread,
    },
]
