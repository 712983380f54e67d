"""`make run` seeds a demo: agencies and professionals with printed passwords and TOTP secrets, a
custodian key, and two workspaces whose posts are real ciphertext.

Passwords are random, made on the first run and kept in .demo-credentials (git-ignored, mode 600) so a
second `make run` prints the same logins. Keys are derived with the same Python code a browser mirrors.
The workspaces are made as the members' clients would make them: each demo professional's identity is
opened with their password, and tacclient seals, signs and checks everything the services store (the
same steps as tacclient.client.TacClient, without the HTTP). Every run is idempotent: a workspace that
exists (fixed ids) is left alone.

Managers' dashboards need a past: three of the workspaces are played out over four to twelve weeks
(`Story`), each post made at its moment under time-machine (the server's clock and the client's signed
time travel together), with the clock job run at every step as a worker would have run it. So some
actions are done on time, some late, some overdue; other agencies acknowledge red concerns after
minutes, hours or days; and one red concern from last night is unanswered, so the clock job run at the
end of the seed records its breach and tells the lead and the lead's managers.
"""

import base64
import datetime as dt
import json
import os
import secrets
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

import time_machine
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Agency, Professional
from accounts.services import agency_create, professional_create_with_password
from messaging import custodian, selectors, services
from messaging.models import CustodianKey, Post, Workspace
from messaging.schemas import EpochBundle, PostEnvelope
from notifications.models import Notification
from notifications.services import notifications_mark_read
from oversight.services import clocks_run
from tacprotocol import crypto
from tacprotocol.record import Record
from tacprotocol.workspace import (
    CustodianPin,
    MemberKey,
    epoch_bundle,
    invite_signature,
    plan_epoch_members,
    rotation_due,
    seal_post,
    workspace_from_detail,
)
from tacprotocol.workspace import Workspace as VerifiedWorkspace

AGENCIES = [
    ("Northshire Children's Social Care", Agency.Kind.CHILDRENS_SOCIAL_CARE),
    ("Riverside Medical Practice", Agency.Kind.GP_PRACTICE),
    ("Northshire Maternity Service", Agency.Kind.MATERNITY),
    ("St Anne's Primary School", Agency.Kind.SCHOOL),
    ("Northshire Police", Agency.Kind.POLICE),
    ("Northshire Safeguarding Children Partnership", Agency.Kind.OTHER),
]

PEOPLE = [
    # email, name, job title, agency index, role, agency admin, site admin
    ("sam.lead@demo.tac", "Sam Okafor", "Social worker", 0, "practitioner", False, False),
    ("morgan.manager@demo.tac", "Morgan Price", "Team manager", 0, "manager", True, True),
    ("priya.gp@demo.tac", "Dr Priya Shah", "GP", 1, "practitioner", True, False),
    ("jo.midwife@demo.tac", "Jo Evans", "Community midwife", 2, "practitioner", True, False),
    ("alex.school@demo.tac", "Alex Brown", "Designated safeguarding lead", 3, "practitioner", True, False),
    ("chris.police@demo.tac", "DC Chris Hall", "Detective constable", 4, "practitioner", True, False),
    # Managers of the other agencies, and the partnership's oversight lead: the dashboards' viewers.
    ("hannah.practice@demo.tac", "Hannah Reid", "Practice manager", 1, "manager", False, False),
    ("grace.maternity@demo.tac", "Grace Osei", "Named midwife for safeguarding", 2, "manager", False, False),
    ("tom.head@demo.tac", "Tom Fielding", "Headteacher", 3, "manager", False, False),
    ("amrit.sergeant@demo.tac", "DS Amrit Kaur", "Detective sergeant", 4, "manager", False, False),
    ("pat.partnership@demo.tac", "Pat Nolan", "Partnership business manager", 5, "partnership", False, False),
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
        # The console backend (the quick start's) would print every email of the demo's history, dozens of
        # them, between the logins above and the server's prompt; the addresses are made up anyway. The
        # notifications themselves are made and listed in the app as ever. Any other backend (the tests'
        # outbox) gets the emails.
        console = settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
        quiet = override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend")
        with quiet if console else nullcontext():
            made = self.seed_stories(stored)
            # What has come due since the stories' last moments, as the worker's clock job would find it
            # now: last night's unanswered red concern breaches its 4 hours; overdue actions escalate.
            ran = clocks_run()
        if made:
            self.stdout.write("\nDemo workspaces (content end-to-end encrypted; sign in as sam.lead@demo.tac to read):")
            for workspace, new in made:
                posts = Post.objects.filter(workspace=workspace).count()
                self.stdout.write(f"  {workspace.reference}  {posts} posts{'  (new)' if new else ''}")
            self.stdout.write("")
        if any(ran.values()):
            self.stdout.write("The clock job, run now: " + ", ".join(f"{what.replace('_', ' ')} {n}"
                                                                    for what, n in ran.items() if n) + "\n")

    def seed_stories(self, stored: dict) -> list[tuple[Workspace, bool]]:
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
            with transaction.atomic(), time_machine.travel(spec_opened(spec), tick=True):
                made.append((demo_workspace(workspace_id, spec, identities), True))
        return made


# --- demo workspaces: the clients' steps, in process ------------------------------------------------------

DEMO_NAMESPACE = uuid.UUID("6f1d3c52-9a43-4b8e-9d0c-7a1e2b3c4d5e")


class DemoClient:
    """One demo professional's client without the HTTP: identity opened with their password (as at
    sign-in), workspace details read through the same selectors the API answers with, and checked by
    tacclient before anything is sealed."""

    def __init__(self, user: Professional, password: str):
        self.user = user
        # What this client's open workspace pages hold: (epoch, roster version) it was verified at, the
        # verified workspace, and its record so far.
        self._views: dict[int, tuple[tuple[int, int], VerifiedWorkspace, Record]] = {}
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

    def view(self, workspace: Workspace) -> tuple[VerifiedWorkspace, Record]:
        """The workspace as this client's open page holds it: verified again whenever its epoch or roster
        moved, and the posts since it last looked added to the record it already checked."""
        workspace.refresh_from_db()
        held = self._views.get(workspace.pk)
        if held is None or held[0] != (workspace.current_epoch, workspace.roster_version):
            ws = self.verified(workspace)
            held = ((workspace.current_epoch, workspace.roster_version), ws, Record(ws.keys, reference=ws.reference))
            self._views[workspace.pk] = held
        _, ws, record = held
        for payload in selectors.post_list(professional=self.user, workspace=workspace,
                                           after_seq=max(record.by_seq, default=0), limit=10_000):
            record.add(json.loads(json.dumps(payload)))
        return ws, record

    def post(self, workspace: Workspace, kind: str, body: dict, **fields) -> Post:
        """Sealed after the newest post this client verified, as a browser does."""
        ws, record = self.view(workspace)
        epoch = ws.keys.current_epoch
        envelope = seal_post(identity=self.identity, author_id=self.user.public_id, workspace_id=ws.id, epoch=epoch,
                             epoch_key=ws.keys.epoch_keys[epoch], kind=kind, body=body, prev=record.last, **fields)
        return services.post_create(author=self.user, workspace=workspace, envelope=PostEnvelope.parse(envelope)).post

    def rotate(self, workspace: Workspace, deputies: list[Professional] | None = None) -> None:
        """The lead's client admits those who accepted (invitations checked), names `deputies` if given,
        and re-posts the details."""
        self._views.pop(workspace.pk, None)  # the roster as it is now: invitations accepted since do not move it
        ws, record = self.view(workspace)
        plan = plan_epoch_members(ws.keys, ws.cards, my_id=self.user.public_id,
                                  my_fingerprint=self.identity.fingerprint(),
                                  deputies=None if deputies is None else {p.public_id for p in deputies})
        details = record.latest_details()
        bundle, _key = epoch_bundle(lead=self.identity, workspace_id=ws.id, epoch=ws.keys.current_epoch + 1,
                                    prev_manifest_hash=ws.keys.manifest_hashes[ws.keys.current_epoch],
                                    members=plan.members, custodian=CustodianPin.parse(custodian.pin_read()).current)
        services.epoch_rotate(lead=self.user, workspace=workspace, epoch=EpochBundle.parse(bundle), deputies=deputies)
        if details is not None:
            self.post(workspace, "details", details.body)


def demo_workspace(workspace_id: uuid.UUID, spec: dict, clients: dict[str, DemoClient]) -> Workspace:
    """Open, invite, accept, admit, then play the spec's story. Precondition: inside transaction.atomic, at
    the moment the workspace opens."""
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
    if spec.get("deputy"):  # the others, teams of three and more, show the lead the prompt to name one
        lead.rotate(workspace, deputies=[clients[spec["deputy"]].user])
    story = Story(workspace, clients, spec["lead"])
    try:
        spec["story"](story)
    finally:
        story.close()
    return workspace


def spec_opened(spec: dict) -> dt.datetime:
    """When the spec's workspace opens: `opened` days ago, at `at` (site time) or at this time of day."""
    if "at" in spec:
        return _moment(spec["opened"], spec["at"])
    return timezone.now() - dt.timedelta(days=spec.get("opened", 0))


def _real_now() -> dt.datetime:
    """The wall clock, also while the seed is time-travelling."""
    hatch = time_machine.escape_hatch
    return dt.datetime.fromtimestamp(hatch.time.time() if hatch.is_travelling() else time.time(), tz=dt.UTC)


def _moment(days_ago: int, clock: str) -> dt.datetime:
    """`clock` (HH:MM, site time) on the day `days_ago` days before the real today."""
    hour, minute = (int(part) for part in clock.split(":"))
    today = timezone.localdate(_real_now())
    return timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour, minute)))


class Story:
    """A workspace's thread, played by its members' clients moment by moment (`at`), under time-machine so
    that the server's clock and each post's signed time agree. Between moments happens what would have
    happened meanwhile: the clock job runs (as a worker does every minute), the demo people read their
    notifications once they are a day old, and the lead's device renews the keys when the signed schedule
    says so (every 30 days), as the workspace page does when the lead opens it."""

    def __init__(self, workspace: Workspace, clients: dict[str, DemoClient], lead: str):
        self.workspace, self.clients, self.lead = workspace, clients, lead
        self.moment = timezone.now()
        self._travel: time_machine.travel | None = None

    def at(self, days_ago: int, clock: str) -> None:
        """Move on to `clock` (HH:MM, site time) `days_ago` days before today."""
        moment = _moment(days_ago, clock)
        if not self.moment < moment < _real_now():
            raise ValueError(f"a story moves forward and stays in the past: {moment} after {self.moment}")
        self.close()
        self._travel = time_machine.travel(moment, tick=True)
        self._travel.start()
        self.moment = moment
        clocks_run()
        self._notifications_read(before=moment - dt.timedelta(days=1))
        self._keys_renewed_if_due()

    def close(self) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = None

    def _notifications_read(self, *, before: dt.datetime) -> None:
        demo = [email for email, *_ in PEOPLE]
        unread = (Notification.objects.filter(recipient__email__in=demo, read_at__isnull=True, created_at__lt=before)
                  .values_list("recipient_id", "pk"))
        by_recipient: dict[int, list[int]] = {}
        for recipient_id, pk in unread:
            by_recipient.setdefault(recipient_id, []).append(pk)
        for recipient in Professional.objects.filter(pk__in=by_recipient):
            notifications_mark_read(professional=recipient, ids=by_recipient[recipient.pk])

    def _keys_renewed_if_due(self) -> None:
        lead = self.clients[self.lead]
        ws, record = lead.view(self.workspace)
        if rotation_due(ws.keys, record.posts_in_epoch(ws.keys.current_epoch)):
            lead.rotate(self.workspace)

    def due(self, days: int) -> dt.date:
        """`days` after the current moment's day."""
        return timezone.localdate() + dt.timedelta(days=days)

    def post(self, email: str, kind: str, body: dict, **fields) -> Post:
        """Posted by `email`'s client; `owner` may be given as an email, `parent` and `target` as posts."""
        if isinstance(fields.get("owner"), str):
            fields["owner"] = self.clients[fields["owner"]].user.public_id
        for name in ("parent", "target"):
            if isinstance(fields.get(name), Post):
                fields[name] = fields[name].post_id
        return self.clients[email].post(self.workspace, kind, body, **fields)

    def concern(self, email: str, rag: str, category: str, detail: str) -> Post:
        return self.post(email, "concern", {"category": category, "detail": detail}, rag=rag)

    def ack(self, email: str, post: Post) -> Post:
        return self.post(email, "acknowledgement", {}, target=post)

    def action(self, email: str, owner: str, title: str, *, due_in: int, detail: str = "",
               parent: Post | None = None) -> Post:
        return self.post(email, "action", {"title": title, "detail": detail}, owner=owner, due=self.due(due_in),
                         status="open", parent=parent)

    def status(self, email: str, action: Post, status: str, note: str = "") -> Post:
        return self.post(email, "action_status", {"note": note}, target=action, status=status)


SAM = "sam.lead@demo.tac"
GP, MIDWIFE, SCHOOL, POLICE = "priya.gp@demo.tac", "jo.midwife@demo.tac", "alex.school@demo.tac", "chris.police@demo.tac"


def _leo_story(t: Story):
    red = t.concern(GP, "red", "neglect", "Leo has missed his 2-year review and two immunisation appointments. "
                                          "Mum has not answered three calls.")
    amber = t.concern(SCHOOL, "amber", "school_attendance", "Nursery attendance 71% this half term; often collected "
                                                            "late and hungry.")
    t.ack(MIDWIFE, red)
    visit = t.action(SAM, MIDWIFE, "Joint home visit with the midwife", due_in=3, parent=red,
                     detail="Check home conditions and talk to mum about the missed appointments.")
    t.status(MIDWIFE, visit, "accepted", "I will arrange it with the health visitor.")
    t.ack(SAM, amber)
    done = t.action(SAM, SCHOOL, "Free school meals and breakfast club referral", due_in=7)
    t.status(SCHOOL, done, "done", "Referral made; Leo starts breakfast club on Monday.")
    t.status(SAM, done, "confirmed", "Confirmed with the school office.")
    t.post(SAM, "update", {"text": "Spoke to mum by phone: she is struggling since her partner left. She agreed to an "
                                   "Early Help assessment."})
    t.post(SAM, "decision", {"text": "TAC meeting 1: Early Help plan agreed; review in six weeks."})


def _ava_story(t: Story):
    t.concern(SCHOOL, "amber", "mental_health", "Ava has been withdrawn in class and said she does not want to go "
                                                "home.")
    t.post(GP, "update", {"text": "Seen with dad for asthma review; no concerns noted at the appointment."})
    t.action(SAM, GP, "Book a CAMHS consultation", due_in=14, detail="Ask the school nurse to join.")


def _mia_story(t: Story):
    """Twelve weeks of a plan that mostly works, and a new incident last night that the lead has not
    answered: its 4-hour clock has run out."""
    t.at(84, "09:20")
    incident = t.concern(POLICE, "red", "domestic_abuse", "Officers called to the home at 02:10: a loud argument "
                                                          "between mum and her partner; Mia (4) was asleep upstairs.")
    t.at(84, "10:05")
    t.ack(SAM, incident)
    log = t.action(SAM, POLICE, "Share the incident log and any earlier call-outs", due_in=4, parent=incident)
    health = t.action(SAM, GP, "Check Mia's health record and immunisations", due_in=7)
    t.at(84, "12:40")
    t.ack(GP, incident)
    t.status(POLICE, log, "accepted", "By Thursday.")
    t.at(83, "08:45")
    t.ack(SCHOOL, incident)
    t.status(GP, health, "accepted")
    t.at(81, "15:00")
    t.status(POLICE, log, "done", "Incident log and two earlier call-outs sent by secure email.")
    t.at(80, "09:30")
    t.status(SAM, log, "confirmed", "Received.")
    t.at(74, "11:00")
    t.status(GP, health, "done", "Up to date but for the second MMR, booked for next week.")
    t.at(73, "09:00")
    t.status(SAM, health, "confirmed")
    t.post(SAM, "decision", {"text": "Strategy discussion: child in need assessment to start; TAC meeting every "
                                     "four weeks."})
    t.at(63, "10:30")
    attendance = t.concern(SCHOOL, "amber", "school_attendance", "Mia has missed 6 of the last 20 sessions at "
                                                                 "nursery, mostly Mondays.")
    t.at(63, "13:10")
    t.ack(SAM, attendance)
    meeting = t.action(SAM, SCHOOL, "Attendance meeting with mum", due_in=7, parent=attendance,
                       detail="With the family support worker.")
    t.at(62, "09:15")
    t.status(SCHOOL, meeting, "accepted")
    t.at(57, "16:00")
    t.status(SCHOOL, meeting, "done", "Met mum: Mondays are hard since her shifts changed; a walking bus is offered.")
    t.at(56, "09:00")
    t.status(SAM, meeting, "confirmed")
    t.at(49, "10:00")
    visit = t.action(SAM, SAM, "Child in need visit", due_in=4)
    t.status(SAM, visit, "accepted")
    t.at(45, "14:30")
    t.status(SAM, visit, "done", "Visited with mum and Mia; home warm and tidy; Mia chatty and well.")
    t.at(42, "07:50")
    second = t.concern(POLICE, "red", "domestic_abuse", "A neighbour reported shouting at the address last night; the "
                                                        "partner had left before officers arrived.")
    t.at(42, "09:05")
    t.post(SAM, "update", {"text": "Spoke to mum: her partner has moved out. Safety plan gone through again."},
           parent=second)
    t.at(42, "15:30")
    t.ack(GP, second)
    t.at(40, "10:00")
    t.ack(SCHOOL, second)
    t.at(28, "10:00")
    check = t.action(SAM, GP, "Ask the health visitor for a development check", due_in=7)
    t.at(27, "11:30")
    t.status(GP, check, "accepted")
    t.at(24, "14:00")
    t.status(GP, check, "done", "Health visitor booked; check done at home.")
    t.at(23, "09:00")
    t.status(SAM, check, "confirmed")
    t.at(21, "11:00")
    speech = t.concern(GP, "green", "other", "The health visitor found Mia's speech behind for her age.")
    t.at(20, "09:30")
    t.ack(SAM, speech)
    t.at(17, "10:00")
    bail = t.action(SAM, POLICE, "Check the partner's bail conditions with the officer in the case", due_in=7)
    t.at(16, "09:00")
    t.status(POLICE, bail, "accepted")
    t.at(14, "10:00")
    checkins = t.action(SAM, SCHOOL, "Weekly check-ins with Mia's key worker", due_in=21)
    t.at(13, "09:40")
    t.status(SCHOOL, checkins, "accepted", "Key worker will see her on Tuesdays and Fridays.")
    t.at(7, "10:00")
    t.action(SAM, GP, "Referral to speech and language therapy", due_in=12, parent=speech)
    t.at(4, "11:00")
    report = t.action(SAM, SCHOOL, "Attendance figures for this half term", due_in=5)
    t.at(3, "15:00")
    t.status(SAM, report, "cancelled", "The weekly check-ins now report attendance.")
    t.at(1, "16:30")
    t.concern(POLICE, "red", "domestic_abuse", "Officers attended again at 15:40: mum's former partner was at the "
                                               "address against his bail conditions; Mia was present.")


def _noah_story(t: Story):
    """Led by the school: actions done late as well as on time, an amber concern answered after its clock
    ran out, and an overdue referral."""
    t.at(56, "10:15")
    incident = t.concern(POLICE, "red", "domestic_abuse", "Police attended a domestic incident overnight; Noah (6) and "
                                                          "his baby sister were in the house.")
    t.at(56, "10:50")
    t.ack(SCHOOL, incident)
    visit = t.action(SCHOOL, MIDWIFE, "Home visit to mum and the baby", due_in=5, parent=incident)
    dash = t.action(SCHOOL, POLICE, "Share the DASH risk assessment", due_in=2)
    t.at(56, "14:00")
    t.ack(GP, incident)
    t.at(55, "09:30")
    t.ack(MIDWIFE, incident)
    t.status(MIDWIFE, visit, "accepted")
    t.status(POLICE, dash, "accepted")
    t.at(52, "16:00")
    t.status(MIDWIFE, visit, "done", "Visited: mum tired but coping; baby feeding and gaining weight.")
    t.at(51, "08:30")
    t.status(SCHOOL, visit, "confirmed")
    t.at(49, "11:20")
    t.status(POLICE, dash, "done", "Assessment shared: medium risk.")
    t.at(48, "09:00")
    t.status(SCHOOL, dash, "confirmed")
    t.at(42, "13:00")
    weight = t.concern(GP, "amber", "neglect", "Noah's weight has fallen from the 50th to the 25th centile since the "
                                               "spring.")
    t.at(37, "15:00")
    t.ack(SCHOOL, weight)
    referral = t.action(SCHOOL, GP, "Paediatric referral", due_in=7, parent=weight)
    t.at(36, "09:00")
    t.status(GP, referral, "accepted")
    t.at(31, "12:00")
    t.status(GP, referral, "done", "Referred; appointment in three weeks.")
    t.at(30, "08:45")
    t.status(SCHOOL, referral, "confirmed")
    t.at(28, "16:00")
    t.post(SCHOOL, "decision", {"text": "Review meeting: the plan continues; mum is engaging well."})
    t.at(21, "10:00")
    support = t.action(SCHOOL, SCHOOL, "Pastoral support plan with the class teacher", due_in=7)
    t.status(SCHOOL, support, "accepted")
    t.at(14, "08:10")
    again = t.concern(POLICE, "red", "domestic_abuse", "A neighbour reported a further incident at the address; no "
                                                       "arrest made.")
    t.at(14, "10:10")
    t.post(SCHOOL, "update", {"text": "Noah in school today, settled; mum says they are safe and staying with her "
                                      "sister."}, parent=again)
    t.at(14, "13:30")
    t.ack(MIDWIFE, again)
    t.at(13, "10:00")
    t.ack(GP, again)
    t.at(13, "12:00")
    t.status(SCHOOL, support, "done", "Plan agreed with Noah's class teacher and mum.")
    t.at(10, "11:00")
    marac = t.action(SCHOOL, POLICE, "Refer the family to MARAC", due_in=5, parent=again)
    t.at(10, "15:00")
    t.status(POLICE, marac, "accepted")
    t.at(9, "09:00")
    recheck = t.action(SCHOOL, GP, "Repeat weight check", due_in=2)
    t.at(8, "16:00")
    t.status(GP, recheck, "done", "Done.")
    t.at(7, "09:10")
    t.status(SCHOOL, recheck, "reopened", "The weight itself is not in the note: please add it.")
    t.at(6, "09:30")
    t.status(GP, recheck, "done", "Weight 19.8 kg, back on the 40th centile.")
    t.action(SCHOOL, MIDWIFE, "Health visitor handover for the baby", due_in=14)
    t.at(5, "08:40")
    t.status(SCHOOL, recheck, "confirmed")
    t.at(2, "10:00")
    housing = t.concern(MIDWIFE, "green", "housing", "Mum has asked for help with a move closer to her sister.")
    t.at(2, "11:30")
    t.ack(SCHOOL, housing)


def _ruby_story(t: Story):
    """A pre-birth plan: maternity actions, a late one, one waiting to be accepted and now overdue, one
    cancelled, and a concern re-rated by its author."""
    t.at(28, "11:00")
    booking = t.concern(MIDWIFE, "amber", "neglect", "Late booking at 24 weeks; mum has missed two antenatal "
                                                     "appointments.")
    t.at(28, "14:00")
    t.ack(SAM, booking)
    antenatal = t.action(SAM, MIDWIFE, "Antenatal appointment with an interpreter", due_in=7, parent=booking)
    t.at(27, "09:00")
    t.ack(GP, booking)
    t.status(MIDWIFE, antenatal, "accepted")
    t.at(22, "15:30")
    t.status(MIDWIFE, antenatal, "done", "Seen with a Romanian interpreter; scans booked.")
    t.at(21, "09:00")
    t.status(SAM, antenatal, "confirmed")
    history = t.action(SAM, GP, "Share mum's medical history with the midwife", due_in=5)
    t.at(20, "10:00")
    t.status(GP, history, "accepted")
    t.at(12, "09:40")
    money = t.concern(MIDWIFE, "red", "domestic_abuse", "Mum disclosed at clinic that her partner controls her money "
                                                        "and her phone.")
    t.at(12, "10:40")
    t.ack(SAM, money)
    t.status(GP, history, "done", "Summary sent to the community midwives.")
    t.at(12, "14:00")
    t.ack(GP, money)
    t.at(11, "09:00")
    t.status(SAM, history, "confirmed")
    t.at(9, "10:00")
    assessment = t.action(SAM, SAM, "Pre-birth assessment", due_in=19, parent=money)
    t.status(SAM, assessment, "accepted")
    t.at(6, "11:00")
    t.action(SAM, MIDWIFE, "Birth plan meeting with mum", due_in=4)
    t.at(5, "10:30")
    double = t.action(SAM, GP, "Book a double appointment for mum", due_in=10)
    t.at(3, "15:00")
    t.status(GP, double, "cancelled", "Mum has registered with another practice; the notes went with her.")
    t.at(2, "09:20")
    t.post(MIDWIFE, "rating_change", {"reason": "Mum has kept every appointment since the interpreter came."},
           target=booking, rag="green")
    t.at(2, "12:00")
    t.ack(SAM, booking)


def _details(name: str, dob: str, nhs_number: str, address: str, family: str) -> dict:
    return {"name": name, "dob": dob, "nhs_number": nhs_number, "address": address, "family": family,
            "notes": "Demo data: not a real child."}


# In the order they are first made, oldest first: each story's clock job acts on what was made before it.
DEMO_WORKSPACES = [
    {
        "slug": "demo-workspace-mia",
        "lead": SAM,
        "members": [GP, POLICE, SCHOOL],
        "deputy": GP,
        "details": _details("Mia Turner", "2022-02-09", "3982597919", "27 Station Road, Northshire NS2 7HD",
                            "Lives with mum; mum's former partner has moved out"),
        "story": _mia_story,
        "opened": 84, "at": "09:00",
    },
    {
        "slug": "demo-workspace-noah",
        "lead": SCHOOL,
        "members": [GP, MIDWIFE, POLICE],
        "details": _details("Noah Bennett", "2019-09-21", "9074833780", "8 Orchard Close, Northshire NS4 2LP",
                            "Lives with mum and his baby sister"),
        "story": _noah_story,
        "opened": 56, "at": "08:40",
    },
    {
        "slug": "demo-workspace-ruby",
        "lead": SAM,
        "members": [MIDWIFE, GP],
        "details": _details("Unborn baby of Elena Popescu", "", "", "Flat 3, 51 Bridge Street, Northshire NS1 6RE",
                            "Mum Elena Popescu, 32 weeks pregnant, lives with her partner; the baby is to be "
                            "called Ruby"),
        "story": _ruby_story,
        "opened": 28, "at": "10:30",
    },
    {
        "slug": "demo-workspace-leo",
        "lead": SAM,
        "members": [GP, MIDWIFE, SCHOOL],
        "details": {"name": "Leo Marsh", "dob": "2021-06-14", "nhs_number": "9434765919",
                    "address": "12 Willow Court, Northshire NS1 4AB",
                    "family": "Mother Kerry Marsh; a baby sister is due in March",
                    "notes": "Demo data: not a real child."},
        "story": _leo_story,
        "opened": 6,  # the home visit was due three days later: three days overdue today
    },
    {
        "slug": "demo-workspace-ava",
        "lead": SAM,
        "members": [GP, SCHOOL],
        "details": {"name": "Ava Collins", "dob": "2017-11-03", "nhs_number": "4010232137",
                    "address": "4 Mill Lane, Northshire NS3 9QT", "family": "Lives with dad and two brothers",
                    "notes": "Demo data: not a real child."},
        "story": _ava_story,
    },
]
