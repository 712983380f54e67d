"""The browser's half of the workspace vectors: epoch wraps, manifests and post envelopes made by
frontend/static/tac/crypto.js must be the bytes tacprotocol.crypto makes, and each side opens the other's."""

import base64
import json
import uuid
from pathlib import Path

import pytest

from tacprotocol import crypto

pytestmark = pytest.mark.browser

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "crypto.json").read_text())

BROWSER_SIDE = """
async (w) => {
  const c = await import('/static/tac/crypto.js');
  await c.ready();
  const b = c.fromB64;
  const author = c.identityFromSecrets(b(w.author_sign_seed), b(w.author_box_secret));
  const reader = c.identityFromSecrets(b(w.reader_sign_seed), b(w.reader_box_secret));
  const epochKey = c.epochKeyUnwrap(b(w.epoch_wrap_for_reader), reader, w.workspace_id, w.epoch);
  let wrongEpoch = 'opened';
  try { c.epochKeyUnwrap(b(w.epoch_wrap_for_reader), reader, w.workspace_id, w.epoch + 1); }
  catch (e) { wrongEpoch = e.message; }
  const wraps = Object.entries(w.wraps).map(([id, v]) => [id, b(v)]);
  const wrapsDigest = c.wrapsHash(wraps, b(w.custodian_wrap));
  const commitment = c.epochKeyCommitment(w.workspace_id, w.epoch, epochKey);
  const custodian = c.custodianIdentity(b(w.custodian_secret));
  const custodianId = c.custodianKeyId(custodian.boxPublic, custodian.signPublic);
  const manifest = c.manifestBytes({
    workspaceId: w.workspace_id, epoch: w.epoch, prevManifestHash: b(w.manifest.prev_manifest_hash),
    members: w.manifest.members.map((m) => ({ publicId: m.public_id, signPublic: b(m.sign_public), boxPublic: b(m.box_public), role: m.role })),
    custodianId, wrapsDigest, keyCommitment: commitment, createdMs: w.manifest.created_ms,
  });
  const parsedManifest = c.manifestParse(b(w.manifest.bytes));
  const r = w.custodian_rotation;
  const rotation = c.custodianRotationStatement(custodianId, b(r.next_box_public), b(r.next_sign_public), r.created_ms);
  const inv = w.invite;
  const invite = c.inviteStatement(w.workspace_id, w.reader_id, c.fingerprint(reader.signPublic, reader.boxPublic), inv.role, inv.epoch, b(inv.nonce));
  const la = w.lead_appointment;
  const appointment = c.leadAppointmentStatement(w.workspace_id, la.epoch, c.hash32(manifest), la.appointee, c.fingerprint(reader.signPublic, reader.boxPublic), la.created_ms);
  const dm = w.deputy_manifest;
  const deputyManifest = c.manifestBytes({
    workspaceId: w.workspace_id, epoch: dm.epoch, prevManifestHash: b(dm.prev_manifest_hash),
    members: dm.members.map((m) => ({ publicId: m.public_id, signPublic: b(m.sign_public), boxPublic: b(m.box_public), role: m.role })),
    custodianId, wrapsDigest, keyCommitment: commitment, createdMs: dm.created_ms,
  });
  const confirmation = c.keyConfirmationStatement(w.author_id, w.reader_id, c.fingerprint(reader.signPublic, reader.boxPublic), w.key_confirmation.confirmed_ms);
  const st = w.state;
  const stateOpened = new TextDecoder().decode(c.stateOpen(reader, w.reader_id, st.version, b(st.blob), b(st.signature)));
  const stateSealed = c.stateSeal(reader, w.reader_id, st.version, new TextEncoder().encode(st.plaintext), b(st.blob).subarray(0, 24));
  let stateWrongVersion = 'opened';
  try { c.stateOpen(reader, w.reader_id, st.version + 1, b(st.blob), b(st.signature)); } catch (e) { stateWrongVersion = e.message; }
  const padding = w.padding.map((x) => ({ padded: c.toB64(c.pad(b(x.data), x.block)), unpadded: c.toB64(c.unpad(b(x.padded), x.block)) }));
  const p = w.post;
  const sealed = c.postSeal(author, {
    workspaceId: w.workspace_id, epoch: w.epoch, postId: p.post_id, authorId: w.author_id,
    authorFingerprint: c.fingerprint(author.signPublic, author.boxPublic), clientTimeMs: p.client_time_ms,
    kind: p.kind, parentId: p.parent_id, targetId: p.target_id, rag: p.rag, ownerId: p.owner_id,
    dueDay: p.due_day, status: p.status, prevSeq: p.prev_seq, prevHash: b(p.prev_hash),
  }, new TextEncoder().encode(p.body), epochKey, b(p.nonce));
  const parsed = c.postHeaderParse(b(p.header));
  const rc = w.rating_change;
  const rating = c.postSeal(author, {
    workspaceId: w.workspace_id, epoch: w.epoch, postId: rc.post_id, authorId: w.author_id,
    authorFingerprint: c.fingerprint(author.signPublic, author.boxPublic), clientTimeMs: rc.client_time_ms,
    kind: rc.kind, targetId: rc.target_id, rag: rc.rag, prevSeq: rc.prev_seq, prevHash: b(rc.prev_hash),
  }, new TextEncoder().encode(rc.body), epochKey, b(rc.nonce));
  const ratingParsed = c.postHeaderParse(b(rc.header));
  const statusHeaders = w.status_headers.map((v) => {
    const back = c.postHeaderParse(b(v.header));
    const again = c.postHeaderBytes({ ...back, authorFingerprint: c.fingerprint(author.signPublic, author.boxPublic) });
    return { status: back.status, ownerId: back.ownerId, same: c.toB64(again) === v.header };
  });
  // A fresh wrap and post for Python to open.
  const freshKey = c.epochKeyNew();
  return {
    epochKey: c.toB64(epochKey), wrongEpoch, statusHeaders,
    ratingChange: {
      header: c.toB64(rating.header), ciphertext: c.toB64(rating.ciphertext), signature: c.toB64(rating.signature),
      kindCode: c.KIND_CODES.rating_change, opened: new TextDecoder().decode(c.postOpen(b(rc.header), b(rc.nonce), b(rc.ciphertext), epochKey)),
      parsed: { kind: ratingParsed.kind, rag: ratingParsed.rag, status: ratingParsed.status, targetId: ratingParsed.targetId,
                ownerId: ratingParsed.ownerId, dueDay: ratingParsed.dueDay },
    },
    custodianId: c.toB64(custodianId),
    custodianPublic: [c.toB64(custodian.boxPublic), c.toB64(custodian.signPublic)],
    commitment: c.toB64(commitment), manifestCommitment: c.toB64(parsedManifest.keyCommitment),
    manifestMembers: parsedManifest.members.map((m) => [m.publicId, c.toB64(m.signPublic), c.toB64(m.boxPublic), m.role]),
    rotation: c.toB64(rotation), rotationVerifies: c.verify(custodian.signPublic, rotation, b(r.signature)),
    invite: c.toB64(invite), inviteSignature: c.toB64(c.sign(author, invite)),
    appointment: c.toB64(appointment), appointmentSignature: c.toB64(c.sign(custodian, appointment)),
    appointmentVerifies: c.verify(b(w.custodian_sign_public), appointment, b(la.signature)),
    deputyManifest: c.toB64(deputyManifest), deputyManifestHash: c.toB64(c.hash32(manifest)), deputyRoleCode: c.ROLE_CODES.deputy,
    deputyMembers: c.manifestParse(b(dm.bytes)).members.map((m) => [m.publicId, c.toB64(m.signPublic), c.toB64(m.boxPublic), m.role]),
    confirmation: c.toB64(confirmation), confirmationSignature: c.toB64(c.sign(author, confirmation)),
    stateKey: c.toB64(c.stateKey(reader, w.reader_id)), stateOpened, stateWrongVersion,
    stateBlob: c.toB64(stateSealed.blob), stateSignature: c.toB64(stateSealed.signature), padding,
    wrapsHash: c.toB64(wrapsDigest), manifest: c.toB64(manifest),
    manifestSignature: c.toB64(c.sign(author, manifest)),
    header: c.toB64(sealed.header), ciphertext: c.toB64(sealed.ciphertext), signature: c.toB64(sealed.signature),
    postHash: c.toB64(c.postHash(sealed.header, sealed.nonce, sealed.ciphertext)),
    verifies: c.postVerify(author.signPublic, b(p.header), b(p.nonce), b(p.ciphertext), b(p.signature)),
    opened: new TextDecoder().decode(c.postOpen(b(p.header), b(p.nonce), b(p.ciphertext), epochKey)),
    parsed: { kind: parsed.kind, rag: parsed.rag, status: parsed.status, dueDay: parsed.dueDay,
              ownerId: parsed.ownerId, parentId: parsed.parentId, clientTimeMs: parsed.clientTimeMs, prevSeq: parsed.prevSeq },
    freshKey: c.toB64(freshKey),
    freshWrap: c.toB64(c.epochKeyWrap(w.workspace_id, 8, freshKey, reader.boxPublic)),
  };
}
"""


def test_it_makes_the_same_workspace_bytes_as_python(page):
    page.goto("/accounts/sign-in/")
    w = VECTORS["workspace"]
    got = page.evaluate(BROWSER_SIDE, w)
    p = w["post"]
    assert got["epochKey"] == w["epoch_key"]
    assert "another workspace or epoch" in got["wrongEpoch"]
    assert got["custodianId"] == w["custodian_id"]
    assert got["custodianPublic"] == [w["custodian_box_public"], w["custodian_sign_public"]]
    assert got["commitment"] == got["manifestCommitment"] == w["key_commitment"]
    assert sorted(got["manifestMembers"]) == sorted(
        [m["public_id"], m["sign_public"], m["box_public"], m["role"]] for m in w["manifest"]["members"])
    assert got["rotation"] == w["custodian_rotation"]["statement"]
    assert got["rotationVerifies"] is True
    assert (got["invite"], got["inviteSignature"]) == (w["invite"]["statement"], w["invite"]["signature"])
    la, dm = w["lead_appointment"], w["deputy_manifest"]
    assert (got["appointment"], got["appointmentSignature"]) == (la["statement"], la["signature"])
    assert got["appointmentVerifies"] is True
    assert got["deputyManifestHash"] == la["manifest_hash"] == dm["prev_manifest_hash"]
    assert got["deputyManifest"] == dm["bytes"]
    assert got["deputyRoleCode"] == 4
    assert got["deputyMembers"] == [[m["public_id"], m["sign_public"], m["box_public"], m["role"]]
                                    for m in sorted(dm["members"], key=lambda m: uuid.UUID(m["public_id"]).bytes)]
    assert "deputy" in [m[3] for m in got["deputyMembers"]]
    assert (got["confirmation"], got["confirmationSignature"]) == (
        w["key_confirmation"]["statement"], w["key_confirmation"]["signature"])
    assert got["stateKey"] == w["state"]["key"]
    assert got["stateOpened"] == w["state"]["plaintext"]
    assert "not signed" in got["stateWrongVersion"]
    assert (got["stateBlob"], got["stateSignature"]) == (w["state"]["blob"], w["state"]["signature"])
    assert got["padding"] == [{"padded": x["padded"], "unpadded": x["data"]} for x in w["padding"]]
    assert got["wrapsHash"] == w["wraps_hash"]
    assert got["manifest"] == w["manifest"]["bytes"]
    assert got["manifestSignature"] == w["manifest"]["signature"]
    assert (got["header"], got["ciphertext"], got["signature"]) == (p["header"], p["ciphertext"], p["signature"])
    assert got["postHash"] == p["post_hash"]
    assert got["statusHeaders"] == [{"status": v["status"], "ownerId": v["owner_id"], "same": True}
                                    for v in w["status_headers"]]
    r = w["rating_change"]
    assert got["ratingChange"] == {
        "header": r["header"], "ciphertext": r["ciphertext"], "signature": r["signature"], "kindCode": 15,
        "opened": r["body"],
        "parsed": {"kind": "rating_change", "rag": "red", "status": "", "targetId": r["target_id"],
                   "ownerId": str(crypto.ZERO_ID), "dueDay": 0},
    }
    assert got["verifies"] is True
    assert got["opened"] == p["body"]
    assert got["parsed"] == {
        "kind": p["kind"], "rag": p["rag"], "status": p["status"], "dueDay": p["due_day"],
        "ownerId": p["owner_id"], "parentId": p["parent_id"], "clientTimeMs": p["client_time_ms"],
        "prevSeq": p["prev_seq"],
    }
    # PyNaCl opens the browser's crypto_box_seal, bound to its workspace and epoch.
    d = base64.b64decode
    reader = crypto.Identity(sign_seed=d(w["reader_sign_seed"]), box_secret=d(w["reader_box_secret"]))
    ws = uuid.UUID(w["workspace_id"])
    assert crypto.epoch_key_unwrap(d(got["freshWrap"]), reader, ws, 8) == d(got["freshKey"])
    with pytest.raises(crypto.DecryptionError):
        crypto.epoch_key_unwrap(d(got["freshWrap"]), reader, ws, 7)
