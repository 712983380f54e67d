"""Create, migrate and seed the benchmark database (`python -m bench.setup --users 1000`).

Seeds, through the same services as the application and with real crypto (tacclient):
  - N professionals (light KDF, see common.BENCH_ENV) each with a confirmed TOTP device;
  - a custodian key, pinned in the bench's own pin directory;
  - workspace "pair": u0 (lead) + u1                      (W1)
  - workspace "big":  u0 (lead) + u1..u{N-1}              (W2)
  - workspaces "g0".."g{N/10-1}": u{10i} lead + 9 members  (W3, W5)
Each workspace gets epoch 1 (lead alone) then epoch 2 admitting everyone, built by the lead's key.
The identities and epoch keys go to the state file (bench-only keys) so run.py can seal posts."""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid

from .common import DB_NAME, STATE, b64d, b64e, django_setup, save_state


def create_database(drop: bool) -> None:
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tA", "-c"]
    if drop:
        subprocess.run(psql + [f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'], check=True)
    exists = subprocess.run(psql + [f"SELECT 1 FROM pg_database WHERE datname='{DB_NAME}'"], check=True,
                            capture_output=True, text=True).stdout.strip()
    if not exists:
        subprocess.run(psql + [f'CREATE DATABASE "{DB_NAME}"'], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--group-size", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="do not drop an existing benchmark database")
    args = ap.parse_args()
    t0 = time.monotonic()
    create_database(drop=not args.keep)
    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    from django.conf import settings
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Agency
    from accounts.schemas import KeyEnrolment
    from accounts.services import agency_create, professional_create
    from messaging import selectors, services
    from messaging.custodian import custodian_key_install
    from messaging.schemas import EpochBundle
    from tacprotocol import crypto
    from tacprotocol.workspace import MemberKey, epoch_bundle, invite_signature

    agency = agency_create(name="Bench Children's Social Care", kind=Agency.Kind.CHILDRENS_SOCIAL_CARE)
    custodian_identity = crypto.custodian_identity(os.urandom(32))
    # A pin of the bench's own (common.BENCH_ENV's TAC_PIN_DIR), started afresh with each database.
    custodian_key_install(box_public=custodian_identity.box_public, sign_public=custodian_identity.sign_public,
                          label="Bench custodian", new_pin=True, actor_label="bench/setup.py")
    custodian = (crypto.custodian_key_id(custodian_identity.box_public, custodian_identity.sign_public),
                 custodian_identity.box_public, custodian_identity.sign_public)

    users, identities = [], []
    for i in range(args.users):
        pid = uuid.uuid4()
        enrolment, identity = KeyEnrolment.from_password(
            password=f"bench password {i}", public_id=pid,
            opslimit=settings.TAC_KDF_OPSLIMIT, memlimit=settings.TAC_KDF_MEMLIMIT)
        u = professional_create(email=f"u{i}@bench.example", full_name=f"Bench User {i}", job_title="Social worker",
                                agency=agency, enrolment=enrolment, public_id=pid)
        TOTPDevice.objects.create(user=u, name="Bench authenticator", confirmed=True)
        users.append(u)
        identities.append(identity)
    print(f"{len(users)} professionals in {time.monotonic() - t0:.1f}s", flush=True)

    cards = {}

    def member_key(idx: int, role: str) -> MemberKey:
        if idx not in cards:
            cards[idx] = selectors.professional_card(users[idx])
        return MemberKey.from_card(cards[idx], role)

    def make_workspace(name: str, lead: int, members: list[int]) -> dict:
        wid = uuid.uuid4()
        lead_id = identities[lead]
        b1, _k1 = epoch_bundle(lead=lead_id, workspace_id=wid, epoch=1, prev_manifest_hash=crypto.ZERO_HASH,
                               members=[member_key(lead, "lead")], custodian=custodian)
        ws = services.workspace_create(lead=users[lead], workspace_id=wid, epoch=EpochBundle.parse(b1))
        for m in members:
            nonce = os.urandom(crypto.INVITE_NONCE_BYTES)
            sig = invite_signature(lead_id, wid, member_key(m, "member"), "member", 1, nonce)
            services.membership_invite(lead=users[lead], workspace=ws, professional=users[m],
                                       invite_signature=b64d(sig), invite_nonce=nonce)
            services.membership_respond(professional=users[m], workspace=ws, accept=True)
        b2, k2 = epoch_bundle(lead=lead_id, workspace_id=wid, epoch=2,
                              prev_manifest_hash=crypto.hash32(b64d(b1["manifest"])),
                              members=[member_key(lead, "lead")] + [member_key(m, "member") for m in members],
                              custodian=custodian)
        services.epoch_rotate(lead=users[lead], workspace=ws, epoch=EpochBundle.parse(b2))
        return {"id": str(wid), "pk": ws.pk, "epoch": 2, "epoch_key": b64e(k2), "lead": lead,
                "members": [lead] + members}

    workspaces = {"pair": make_workspace("pair", 0, [1])}
    workspaces["big"] = make_workspace("big", 0, list(range(1, args.users)))
    print(f"big workspace in {time.monotonic() - t0:.1f}s", flush=True)
    g = args.group_size
    for i in range(args.users // g):
        workspaces[f"g{i}"] = make_workspace(f"g{i}", g * i, list(range(g * i + 1, g * i + g)))
    print(f"{args.users // g} group workspaces in {time.monotonic() - t0:.1f}s", flush=True)

    save_state({
        "users": [{"pk": u.pk, "id": str(u.public_id), "sign_seed": b64e(idn.sign_seed),
                   "box_secret": b64e(idn.box_secret)} for u, idn in zip(users, identities, strict=True)],
        "workspaces": workspaces,
        "seeded_in_s": round(time.monotonic() - t0, 1),
    })
    print(f"seeded {DB_NAME} in {time.monotonic() - t0:.1f}s; state in {STATE}")


if __name__ == "__main__":
    main()
