"""The browser's half of the hostile-server scenarios (tests/scenarios.py): frontend/static/tac/
workspace.js and record.js, run in Chromium as the pages load them, reach exactly the outcome tacclient
reaches for every scenario, and that outcome is the one each scenario requires."""

import pytest

from tests import scenarios

pytestmark = pytest.mark.browser

OUTCOME_JS = """
async (all) => {
  const c = await import('/static/tac/crypto.js');
  const w = await import('/static/tac/workspace.js');
  const { Record } = await import('/static/tac/record.js');
  await c.ready();
  const b64 = (x) => c.toB64(x);
  return all.map((s) => {
    const identity = c.identityFromSecrets(c.fromB64(s.reader.sign_seed), c.fromB64(s.reader.box_secret));
    const result = { error: null };
    let keys;
    try {
      keys = w.verifyWorkspace(s.detail, identity, {
        myId: s.reader.id, memory: Object.keys(s.memory).length ? s.memory : null, verified: s.verified, pin: w.parsePin(s.pin),
      });
    } catch (error) {
      if (!(error instanceof w.TrustError)) throw error;
      result.error = error.message;
      return result;
    }
    result.key_problems = keys.problems.length;
    result.epoch_keys = [...keys.epochKeys.keys()].sort((a, b) => a - b);
    const record = new Record(keys, { reference: s.reference });
    for (const payload of s.posts) record.add(payload);
    record.checkMemory(Object.keys(s.memory).length ? s.memory : null);
    result.warnings = record.warnings.length;
    result.problems = record.problems.length + keys.problems.length;
    result.entries = record.entries.map((e) => ({
      seq: e.seq, post_id: e.postId, refused: e.refused !== null, notes: e.notes.length, status: e.status,
      acks: e.acks.size, events: e.events.length, retracted: e.retractedBy !== null, body: e.body, rag: e.rag,
      ratings: e.ratings.map((r) => [r.old, r.new, r.reason, r.by]),
    }));
    if (s.plan !== null) {
      const cards = new Map([...w.memberCards(s.detail)].filter(([, m]) => w.CURRENT_STATES.includes(m.state)));
      try {
        const options = s.plan;
        const plan = w.planEpochMembers(keys, cards, {
          myId: s.reader.id, myFingerprint: c.fingerprint(identity.signPublic, identity.boxPublic),
          remove: options.remove || null, newLead: options.new_lead || null, admit: 'admit' in options ? new Set(options.admit) : null,
          deputies: 'deputies' in options ? new Set(options.deputies) : null,
        });
        result.plan = {
          members: plan.members.map((m) => [m.publicId, b64(m.fingerprint), m.role]).sort(),
          admitted: [...plan.admitted].sort(), refused: [...plan.refused.keys()].sort(), warnings: plan.warnings.length, error: null,
        };
      } catch (error) {
        if (!(error instanceof w.TrustError)) throw error;
        result.plan = { error: error.message };
      }
    }
    return result;
  });
}
"""


def test_the_browser_believes_exactly_what_the_python_client_believes(page, lead, gp, manager, outsider, custodian,
                                                                     capture_events):
    built = scenarios.build(lead, gp, manager, outsider, custodian)
    page.goto("/accounts/sign-in/")
    browser = page.evaluate(OUTCOME_JS, built)
    for s, got in zip(built, browser, strict=True):
        python = scenarios.outcome(s)
        if python.get("error") or got.get("error"):
            # The same refusal on both sides (wording may differ between the languages' parsers).
            assert bool(python["error"]) == bool(got["error"]), (s["name"], python["error"], got["error"])
            got = {**got, "error": python["error"]}
        if "plan" in python and python["plan"].get("error"):
            assert got["plan"]["error"], (s["name"], got["plan"])
            got["plan"]["error"] = python["plan"]["error"]
        assert got == python, s["name"]
        scenarios.check(s, got)
