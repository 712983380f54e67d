"""Lead continuity (docs/crypto.md): deputies named in signed manifests, a deputy taking the lead when the
lead is offboarded, a frozen workspace unfrozen only by a custodian-signed appointment, and what both the
server and a member's client refuse of a server that forges any of it."""

from __future__ import annotations

import base64
import copy
import json
import os
import uuid

import pytest
import shamir_mnemonic
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command

from accounts.services import professional_offboard
from audit.models import AuditEvent
from messaging import custodian as pin_file
from messaging import selectors, services
from messaging.custodian import Conflict, custodian_key_install
from messaging.models import Epoch, LeadAppointment, Membership, Workspace
from messaging.schemas import EpochBundle
from notifications.models import Notification
from tacclient import cli
from tacprotocol import crypto
from tacprotocol.custodian import AppointmentError, appointment_sign
from tacprotocol.workspace import (
    CustodianPin,
    TrustError,
    epoch_bundle,
    member_cards,
    plan_epoch_members,
    verify_workspace,
)
from tests.conftest import sign_in
from tests.messaging.factories import Client, join, member_key

b64 = lambda data: base64.b64encode(bytes(data)).decode()  # noqa: E731


@pytest.fixture
def admin(make_persona):
    return make_persona("admin@csc.example", "csc", full_name="Ada Admin", is_agency_admin=True)


@pytest.fixture
def team(lead, gp, outsider, custodian):
    """Sam leads; Priya (GP) and Olly (teacher) are members at epoch 2."""
    sam, priya, olly = Client(lead, custodian), Client(gp, custodian), Client(outsider, custodian)
    workspace = sam.create_workspace({"name": "Child C"})
    join(sam, workspace, priya, olly)
    workspace.refresh_from_db()
    return workspace, sam, priya, olly


def role_of(workspace, client) -> str:
    return Membership.objects.get(workspace=workspace, professional=client.user, state="active").role


def audit_kinds(workspace) -> list[str]:
    return list(AuditEvent.objects.filter(chain__name=f"workspace:{workspace.pk}").order_by("pk")
                .values_list("kind", flat=True))


def test_the_lead_names_a_deputy_in_a_signed_manifest(team):
    workspace, sam, priya, olly = team
    sam.rotate(workspace, deputies=[priya.user])
    assert role_of(workspace, priya) == "deputy" and role_of(workspace, olly) == "member"
    keys = olly.keys(workspace)
    assert keys.deputies() == [priya.user.public_id] and keys.signed_by[3] == ("lead", sam.user.public_id)
    assert keys.signer_role(priya.user.public_id) == "deputy" and keys.signer_role(olly.user.public_id) is None
    assert "workspace.deputies_named" in audit_kinds(workspace)
    detail = selectors.workspace_detail(professional=olly.user, workspace=workspace)
    assert {c["name"]: c["role"] for c in detail["members"]}["Dr Priya GP"] == "deputy"
    # Dropping her: the whole set from now on.
    sam.rotate(workspace, deputies=[])
    assert role_of(workspace, priya) == "member" and olly.keys(workspace).deputies() == []


def test_only_the_lead_names_deputies_and_only_members_can_be_one(team, manager, custodian):
    workspace, sam, priya, olly = team
    overseer = Client(manager, custodian)
    join(sam, workspace, overseer, role="oversight")
    with pytest.raises(ValidationError, match="a deputy must be an active member"):
        sam.rotate(workspace, deputies=[overseer.user])
    with pytest.raises(ValidationError, match="a deputy must be an active member"):
        sam.rotate(workspace, deputies=[sam.user])
    sam.rotate(workspace, deputies=[priya.user])
    with pytest.raises(PermissionDenied, match="only the lead professional can hand the lead over or name deputies"):
        priya.rotate(workspace, deputies=[priya.user, olly.user])
    with pytest.raises(PermissionDenied, match="only the lead professional or a deputy"):
        olly.rotate(workspace)
    # The manifest must give each member the role the server expects: a lead naming a deputy the request
    # does not name is refused.
    bundle = sam.next_epoch_bundle(workspace, deputies=[priya.user, olly.user])
    with pytest.raises(ValidationError, match="as deputy, not as member"):
        services.epoch_rotate(lead=sam.user, workspace=workspace, epoch=EpochBundle.parse(bundle),
                              deputies=[priya.user])


def test_a_deputy_renews_the_keys_while_the_lead_keeps_the_lead(team, make_persona, custodian):
    workspace, sam, priya, olly = team
    sam.rotate(workspace, deputies=[priya.user])
    services.membership_leave(professional=olly.user, workspace=workspace)
    epoch = priya.rotate(workspace)
    assert epoch.signed_by == priya.user
    keys = sam.keys(workspace)
    assert keys.signed_by[epoch.number] == ("deputy", priya.user.public_id) and keys.lead() == sam.user.public_id
    assert AuditEvent.objects.filter(kind="epoch.created", data__signed_as="deputy").exists()
    # A deputy may also invite; the lead's (or a deputy's) device admits on that signature.
    newcomer = Client(make_persona("nurse@gp.example", "gp", full_name="Nia Nurse"), custodian)
    priya.invite(workspace, newcomer.user)
    services.membership_respond(professional=newcomer.user, workspace=workspace, accept=True)
    plan = plan_epoch_members(sam.keys(workspace), {pid: c for pid, c in _cards(sam, workspace).items()},
                              my_id=sam.user.public_id, my_fingerprint=sam.identity.fingerprint())
    assert plan.admitted == [newcomer.user.public_id]


def _cards(client, workspace):
    return member_cards(client.detail(workspace))


def test_offboarding_the_lead_hands_the_lead_to_the_deputy_whose_device_starts_the_next_epoch(team, admin):
    workspace, sam, priya, olly = team
    sam.rotate(workspace, deputies=[priya.user])
    professional_offboard(admin=admin.user, professional=sam.user)
    workspace.refresh_from_db()
    assert workspace.lead == priya.user and workspace.rotation_required and role_of(workspace, priya) == "lead"
    assert "workspace.lead_handed_over" in audit_kinds(workspace)
    assert Notification.objects.filter(recipient=priya.user, kind="lead_taken_over").exists()
    # Until her device renews the keys, nobody posts; her client's plan takes the lead (the signed record
    # still names Sam, who is not in it any more).
    with pytest.raises(Conflict):
        olly.post(workspace, "update", {"text": "Before the new epoch"})
    keys = priya.keys(workspace)
    assert keys.signer_role(priya.user.public_id) == "deputy"
    with pytest.raises(TrustError, match="the lead has left"):
        plan_epoch_members(keys, _cards(priya, workspace), my_id=priya.user.public_id,
                           my_fingerprint=priya.identity.fingerprint())
    epoch = priya.rotate(workspace, new_lead=priya.user)
    keys = olly.keys(workspace)
    assert keys.signed_by[epoch.number] == ("deputy", priya.user.public_id) and keys.lead() == priya.user.public_id
    assert sam.user.public_id not in keys.members()
    olly.post(workspace, "update", {"text": "Carrying on"})
    assert [p.body for p in priya.read(workspace)][-1] == {"text": "Carrying on"}


def test_a_lead_offboarded_with_no_deputy_freezes_the_workspace_until_the_custodians_appoint(team, admin, custodian,
                                                                                               tmp_path):
    workspace, sam, priya, olly = team
    professional_offboard(admin=admin.user, professional=sam.user)
    workspace.refresh_from_db()
    assert workspace.lead == sam.user and "workspace.frozen" in audit_kinds(workspace)
    assert set(Notification.objects.filter(kind="workspace_frozen").values_list("recipient", flat=True)) == {
        priya.user.pk, olly.user.pk}
    detail = selectors.workspace_detail(professional=olly.user, workspace=workspace)
    assert detail["continuity"]["state"] == "frozen" and detail["continuity"]["lead_name"] == "Sam Lead"
    assert detail["continuity"]["left_at"]
    with pytest.raises(PermissionDenied):
        priya.rotate(workspace)

    # The request, signed offline by two shares, installed: Priya leads.
    out = tmp_path / "request.json"
    call_command("lead_appointment_request", workspace.reference, "--lead", priya.user.email, "--out", str(out))
    request = json.loads(out.read_text())
    assert (request["epoch"], request["appointee"]) == (2, str(priya.user.public_id))
    safety = crypto.safety_number(priya.identity.fingerprint())
    with pytest.raises(AppointmentError, match="safety number does not match"):
        appointment_sign(request, custodian, crypto.safety_number(olly.identity.fingerprint()))
    with pytest.raises(AppointmentError, match="another custodian key"):
        appointment_sign(request, crypto.custodian_identity(bytes(32)), safety)
    signed = tmp_path / "appointment.json"
    signed.write_text(json.dumps(appointment_sign(request, custodian, safety)))
    call_command("lead_appointment_install", str(signed))
    workspace.refresh_from_db()
    assert workspace.lead == priya.user and role_of(workspace, priya) == "lead"
    assert "workspace.lead_appointed" in audit_kinds(workspace)
    assert Notification.objects.filter(recipient=priya.user, kind="lead_appointed").exists()
    with pytest.raises(CommandError, match="has a lead"):
        call_command("lead_appointment_install", str(signed))

    keys = priya.keys(workspace)
    assert keys.appointed == (priya.user.public_id, priya.identity.fingerprint())
    assert keys.signer_role(priya.user.public_id) == "appointed"
    with pytest.raises(TrustError, match="the custodians appointed you"):
        plan_epoch_members(keys, _cards(priya, workspace), my_id=priya.user.public_id,
                           my_fingerprint=priya.identity.fingerprint())
    epoch = priya.rotate(workspace, new_lead=priya.user)
    keys = olly.keys(workspace)
    assert keys.signed_by[epoch.number] == ("appointed", priya.user.public_id)
    assert selectors.workspace_detail(professional=olly.user, workspace=workspace)["continuity"] == {"state": "led"}
    olly.post(workspace, "update", {"text": "Thank you"})
    # The appointment named epoch 2's manifest: it appoints nobody after epoch 3.
    assert olly.keys(workspace).appointed is None


def test_the_offline_command_rebuilds_the_key_from_two_shares(lead, gp, outsider, admin, tmp_path, monkeypatch, capsys):
    secret = os.urandom(32)
    identity = crypto.custodian_identity(secret)
    custodian_key_install(box_public=identity.box_public, sign_public=identity.sign_public, label="Shares test",
                          new_pin=True)
    sam, priya, olly = Client(lead, identity), Client(gp, identity), Client(outsider, identity)
    workspace = sam.create_workspace({"name": "Child D"})
    join(sam, workspace, priya, olly)
    professional_offboard(admin=admin.user, professional=sam.user)
    request = tmp_path / "request.json"
    call_command("lead_appointment_request", workspace.reference, "--lead", olly.user.email, "--out", str(request))
    shares = shamir_mnemonic.generate_mnemonics(group_threshold=1, groups=[(2, 3)], master_secret=secret)[0]
    out = tmp_path / "appointment.json"
    safety = crypto.safety_number(olly.identity.fingerprint())

    def run(stdin: str, number: str) -> int:
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO(stdin))
        return cli.main(["custodian-appoint", str(request), "--safety-number", number, "--out", str(out)])

    assert run(shares[0] + "\n", safety) == 2
    assert "nothing was signed: the shares do not rebuild a key" in capsys.readouterr().err
    assert run(f"{shares[0]}\n{shares[2]}\n", "1" * 30) == 2 and not out.exists()
    assert run(f"{shares[0]}\n{shares[2]}\n", safety) == 0
    assert "Olly Outsider to lead" in capsys.readouterr().out
    services.lead_appointment_install(appointment=json.loads(out.read_text()), actor_label="test")
    assert Workspace.objects.get(pk=workspace.pk).lead == olly.user


def test_the_server_refuses_an_appointment_that_does_not_verify(team, admin, custodian, manager):
    workspace, sam, priya, olly = team
    overseer = Client(manager, custodian)
    join(sam, workspace, overseer, role="oversight")
    with pytest.raises(ValidationError, match="has a lead"):
        services.lead_appointment_request(workspace=workspace, appointee=priya.user, actor_label="test")
    professional_offboard(admin=admin.user, professional=sam.user)
    workspace.refresh_from_db()
    with pytest.raises(ValidationError, match="not oversight"):
        services.lead_appointment_request(workspace=workspace, appointee=overseer.user, actor_label="test")
    request = services.lead_appointment_request(workspace=workspace, appointee=priya.user, actor_label="test")
    safety = crypto.safety_number(priya.identity.fingerprint())
    forged = appointment_sign({**request, "custodian_key_id": crypto.custodian_key_id(
        crypto.custodian_identity(bytes(32)).box_public, crypto.custodian_identity(bytes(32)).sign_public).hex()},
        crypto.custodian_identity(bytes(32)), safety)
    with pytest.raises(ValidationError, match="not signed by this site's custodian key"):
        services.lead_appointment_install(appointment=forged, actor_label="test")
    genuine = appointment_sign(request, custodian, safety)
    with pytest.raises(ValidationError, match="another key"):
        services.lead_appointment_install(appointment={**genuine, "fingerprint": b64(olly.identity.fingerprint())},
                                          actor_label="test")
    with pytest.raises(ValidationError, match="not a signed lead appointment"):
        services.lead_appointment_install(appointment={"type": "something"}, actor_label="test")
    with pytest.raises(ValidationError, match="manifest_hash is not 32 bytes"):
        services.lead_appointment_install(appointment={**genuine, "manifest_hash": b64(b"x")}, actor_label="test")
    assert not LeadAppointment.objects.exists() and Workspace.objects.get(pk=workspace.pk).lead == sam.user


def test_a_members_client_refuses_what_a_hostile_server_makes_of_continuity(team, admin, custodian):
    """The server edits rows: an appointment signed by its own key, a deputy that seizes the lead while the
    lead is still a member, a deputy naming deputies. Each manifest is refused by the other members'
    clients, and the forged appointee's own client will not sign one."""
    workspace, sam, priya, olly = team
    sam.rotate(workspace, deputies=[priya.user])
    keys = olly.keys(workspace)
    detail = olly.detail(workspace)
    prev_hash = keys.manifest_hashes[3]

    def forged_epoch(signer: Client, members) -> dict:
        bundle, _key = epoch_bundle(lead=signer.identity, workspace_id=workspace.public_id, epoch=4,
                                    prev_manifest_hash=prev_hash, members=members, custodian=signer.custodian_key)
        d = copy.deepcopy(detail)
        d["epochs"].append({"number": 4, "manifest": bundle["manifest"], "manifest_signature": bundle["manifest_signature"],
                            "signed_by": str(signer.user.public_id), "my_wraps": []})
        return d

    pin = CustodianPin.parse(pin_file.pin_read())

    def verdict(d) -> str:
        try:
            verify_workspace(d, olly.identity, my_id=olly.user.public_id, pin=pin)
        except TrustError as exc:
            return str(exc)
        return "believed"

    # Priya, a deputy, names herself lead while Sam is still in the manifest.
    coup = forged_epoch(priya, [member_key(sam.user, "member"), member_key(priya.user, "lead"),
                                member_key(olly.user, "member")])
    assert "a deputy takes over only when the lead has left" in verdict(coup)
    # Priya keeps Sam as lead but makes Olly a deputy.
    promoted = forged_epoch(priya, [member_key(sam.user, "lead"), member_key(priya.user, "deputy"),
                                    member_key(olly.user, "deputy")])
    assert "only the lead can" in verdict(promoted)
    # Olly, neither lead nor deputy, signs one.
    assert "not signed by the lead the record names, by a deputy" in verdict(
        forged_epoch(olly, [member_key(sam.user, "lead"), member_key(priya.user, "deputy"),
                            member_key(olly.user, "member")]))
    # An honest deputy taking over once the lead is gone is believed.
    assert verdict(forged_epoch(priya, [member_key(priya.user, "lead"), member_key(olly.user, "member")])) == "believed"

    # The server invents an appointment for Olly, signed by a key of its own, and makes him lead.
    rogue = crypto.custodian_identity(bytes(32))
    statement = crypto.lead_appointment_statement(workspace.public_id, 3, prev_hash, olly.user.public_id,
                                                  olly.identity.fingerprint(), 1_790_000_000_000)
    appointed = copy.deepcopy(detail)
    appointed["lead_appointments"] = [{"epoch": 3, "appointee": str(olly.user.public_id),
                                       "fingerprint": b64(olly.identity.fingerprint()), "created_ms": 1_790_000_000_000,
                                       "signature": b64(rogue.sign(statement))}]
    seized = forged_epoch(olly, [member_key(olly.user, "lead"), member_key(priya.user, "member")])
    seized["lead_appointments"] = appointed["lead_appointments"]
    assert "not signed by the lead the record names, by a deputy, or by a lead the custodians appointed" in \
        verdict(seized)
    olly_keys = verify_workspace(appointed, olly.identity, my_id=olly.user.public_id, pin=pin)
    assert olly_keys.appointed is None and olly_keys.signer_role(olly.user.public_id) is None
    # The same appointment signed by the real custodian key is believed: the check is the signature.
    appointed["lead_appointments"][0]["signature"] = b64(custodian.sign(statement))
    seized["lead_appointments"] = appointed["lead_appointments"]
    assert verdict(seized) == "believed"
    # ... but not for another epoch's manifest (replayed after the record moved on).
    replay = copy.deepcopy(seized)
    replay["lead_appointments"][0]["epoch"] = 2
    assert "not signed by the lead the record names" in verdict(replay)


def test_the_server_checks_the_signer_of_a_continuity_epoch_too(team, admin):
    """Posts still need the epoch: after a deputy takes over, the new manifest must name her lead."""
    workspace, sam, priya, olly = team
    sam.rotate(workspace, deputies=[priya.user])
    professional_offboard(admin=admin.user, professional=sam.user)
    bundle = priya.next_epoch_bundle(workspace, lead=olly.user)  # names Olly lead: not what the server holds
    with pytest.raises(ValidationError, match="exactly the lead professional as lead"):
        services.epoch_rotate(lead=priya.user, workspace=workspace, epoch=EpochBundle.parse(bundle))
    assert Epoch.objects.filter(workspace=workspace).count() == 3


@pytest.mark.parametrize(("deputies", "reason"), [
    ("someone", "deputies: a list of at most 20 member ids"),
    (["not-an-id"], "deputy"),
    ([str(uuid.uuid4())], "deputy: no such professional"),
    ([None] * 21, "deputies: a list of at most 20 member ids"),
])
def test_the_api_says_why_it_refuses_a_list_of_deputies(team, client, deputies, reason):
    workspace, sam, priya, _olly = team
    sign_in(client, sam.persona)
    body = {"epoch": sam.next_epoch_bundle(workspace, deputies=[priya.user]), "deputies": deputies}
    answer = client.post(f"/api/v1/workspaces/{workspace.public_id}/epochs", json.dumps(body),
                         content_type="application/json")
    assert answer.status_code == 400 and reason in answer.json()["reason"]
    assert Workspace.objects.get(pk=workspace.pk).current_epoch == 2

def genuine_appointment(workspace, reader, appointee, custodian) -> dict:
    """An appointment of `appointee` after epoch 2 as the custodians sign it, as the detail lists it."""
    manifest_hash = reader.keys(workspace).manifest_hashes[2]
    statement = crypto.lead_appointment_statement(workspace.public_id, 2, manifest_hash, appointee.user.public_id,
                                                  appointee.identity.fingerprint(), 1_790_000_000_000)
    return {"epoch": 2, "appointee": str(appointee.user.public_id), "fingerprint": b64(appointee.identity.fingerprint()),
            "created_ms": 1_790_000_000_000, "signature": b64(custodian.sign(statement))}


@pytest.mark.parametrize("field", [
    {"created_ms": -1}, {"created_ms": 2**64}, {"created_ms": "1790000000000"}, {"epoch": "3"}, {"epoch": True},
    {"appointee": "NOT-AN-ID"}, {"fingerprint": 7}, {"signature": None}, {},
])
def test_a_malformed_appointment_is_ignored_never_a_crash(team, custodian, field):
    """Found by comparing the two clients: a negative time crashed Python's client (struct.error) on any
    workspace whose detail a server padded with such an appointment; both now pass it over."""
    workspace, sam, priya, olly = team
    detail, good = olly.detail(workspace), genuine_appointment(workspace, olly, priya, custodian)
    if field == {}:
        detail["lead_appointments"] = ["not an object", None, 5]
    else:
        detail["lead_appointments"] = [{**good, **field}]
        if field == {"appointee": "NOT-AN-ID"}:
            detail["lead_appointments"].append({**good, "appointee": str(priya.user.public_id).upper()})
    verified = verify_workspace(detail, olly.identity, my_id=olly.user.public_id, pin=CustodianPin.parse(pin_file.pin_read()))
    assert verified.appointed is None and verified.current_epoch == 2
    key = next(k for k in detail["author_keys"] if k["professional"] == str(priya.user.public_id))
    detail["key_confirmations"] = [{"confirmer": str(sam.user.public_id), "subject": key["professional"],
                                    "sign_public": key["sign_public"], "box_public": key["box_public"],
                                    "binding_signature": key["binding_signature"], "confirmed_ms": -5,
                                    "signature": b64(bytes(64))}]
    assert verify_workspace(detail, olly.identity, my_id=olly.user.public_id).current_epoch == 2


@pytest.mark.parametrize("appointments", [
    "appointee not a string", "appointee a list", 5, {"epoch": 2}, "a string",
])
def test_a_hostile_list_of_appointments_is_ignored_never_a_crash(team, custodian, appointments):
    """Review: an appointee id that is not a string (uuid.UUID(7) raises AttributeError) or a
    `lead_appointments` that is not a list crashed the Python client's verify_workspace; the browser
    passes both over. Both clients must ignore them like any appointment that does not verify."""
    workspace, sam, priya, olly = team
    detail, good = olly.detail(workspace), genuine_appointment(workspace, olly, priya, custodian)
    if appointments == "appointee not a string":
        appointments = [{**good, "appointee": 7}]
    elif appointments == "appointee a list":
        appointments = [{**good, "appointee": [good["appointee"]]}]
    detail["lead_appointments"] = appointments
    verified = verify_workspace(detail, olly.identity, my_id=olly.user.public_id,
                                pin=CustodianPin.parse(pin_file.pin_read()))
    assert verified.appointed is None and verified.current_epoch == 2


@pytest.mark.parametrize("field", [
    {"workspace": 7}, {"appointee": ["x"]}, {"created_ms": -1}, {"created_ms": 2**64}, {"epoch": 2**40},
])
def test_a_malformed_appointment_file_gets_a_clear_refusal_never_a_traceback(team, admin, custodian, tmp_path,
                                                                                field):
    """Review: manage.py lead_appointment_install crashed (AttributeError, struct.error) on an appointment
    file with a field of the wrong type or range, instead of saying what is wrong."""
    workspace, sam, priya, olly = team
    professional_offboard(admin=admin.user, professional=sam.user)
    workspace.refresh_from_db()
    request = services.lead_appointment_request(workspace=workspace, appointee=priya.user, actor_label="test")
    genuine = appointment_sign(request, custodian, crypto.safety_number(priya.identity.fingerprint()))
    path = tmp_path / "appointment.json"
    path.write_text(json.dumps({**genuine, **field}))
    with pytest.raises(CommandError):
        call_command("lead_appointment_install", str(path))
    assert not LeadAppointment.objects.exists() and Workspace.objects.get(pk=workspace.pk).lead == sam.user


def test_a_request_that_cannot_be_written_is_a_clear_error_and_not_audited(team, admin, tmp_path):
    """Review: lead_appointment_request audited the request, then crashed (OSError) when --out could not
    be written: a traceback, and an audit event for a request nobody can sign."""
    workspace, sam, priya, olly = team
    professional_offboard(admin=admin.user, professional=sam.user)
    before = audit_kinds(workspace).count("lead_appointment.requested")
    with pytest.raises(CommandError, match="cannot write"):
        call_command("lead_appointment_request", workspace.reference, "--lead", priya.user.email,
                     "--out", str(tmp_path / "missing" / "request.json"))
    assert audit_kinds(workspace).count("lead_appointment.requested") == before


def test_custodian_appoint_says_why_a_request_with_a_wrong_type_is_refused(team, admin, custodian):
    """Review: a request naming its workspace with a number raised AttributeError out of appointment_sign
    (`tac custodian-appoint` printed 'unexpected error')."""
    workspace, sam, priya, olly = team
    professional_offboard(admin=admin.user, professional=sam.user)
    request = services.lead_appointment_request(workspace=workspace, appointee=priya.user, actor_label="test")
    safety = crypto.safety_number(priya.identity.fingerprint())
    for field in ({"workspace": 7}, {"appointee": ["x"]}):
        with pytest.raises(AppointmentError, match="no valid workspace, appointee or epoch"):
            appointment_sign({**request, **field}, custodian, safety)


@pytest.mark.parametrize("act", ["names a deputy", "hands the lead on"])
def test_a_deputy_taking_over_cannot_name_deputies_or_hand_the_lead_on_in_that_epoch(team, admin, act):
    """Review: once the server made Priya lead (Sam offboarded), it took from her, in the epoch that takes
    over, deputies or a handover to someone else: a manifest signed by Sam's deputy that every member's
    client refuses ('only the lead can'), and which the next epoch must chain to, so nobody could read or
    post again. The server must hold a continuity epoch to the rules readers check."""
    workspace, sam, priya, olly = team
    sam.rotate(workspace, deputies=[priya.user])
    professional_offboard(admin=admin.user, professional=sam.user)
    workspace.refresh_from_db()
    with pytest.raises(PermissionDenied, match="takes over"):
        if act == "names a deputy":
            priya.rotate(workspace, new_lead=priya.user, deputies=[olly.user])
        else:
            priya.rotate(workspace, new_lead=olly.user)
    assert Workspace.objects.get(pk=workspace.pk).current_epoch == 3
    # Taking over as the rules allow is accepted, and from then on she leads as she pleases.
    priya.rotate(workspace, new_lead=priya.user)
    assert olly.keys(workspace).signed_by[4] == ("deputy", priya.user.public_id)
    priya.rotate(workspace, deputies=[olly.user])
    assert olly.keys(workspace).deputies() == [olly.user.public_id]


def test_offboarding_locks_the_workspaces_before_their_memberships(team, admin):
    """As epoch_rotate does (it changes roles under the workspace's lock): the other order let offboarding
    someone while their role changed deadlock (found by review; PostgreSQL then aborts one with an error)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    workspace, sam, priya, _olly = team
    with CaptureQueriesContext(connection) as captured:
        professional_offboard(admin=admin.user, professional=priya.user)
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    tables = [Workspace._meta.db_table, Membership._meta.db_table]
    order = [next(t for t in tables if f'FROM "{t}"' in sql) for sql in locks if any(f'FROM "{t}"' in sql for t in tables)]
    assert order[:2] == tables, order
