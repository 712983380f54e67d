// The workspace page: the live thread, the composer, the team. Everything here is believed only as far
// as it verifies against signed state (docs/crypto.md, "What a reader believes"): the team comes from the
// verified manifest, keys are trusted only as manifests and confirmations allow, the thread is assembled
// by record.js (chain, causal order, who may change what). Anything that fails is shown as a warning,
// never used silently. Words are rendered with textContent, never as HTML.
import { CharacterCount } from '/static/vendor/govuk-frontend/govuk-frontend.min.js';
import { change as actionChange, overdue as isOverdue } from './actions.js';
import { clearErrors, getJSON, postJSON, setBusy, showErrors } from './api.js';
import { el } from './dom.js';
import { keysUnlocked } from './key-status.js';
import { Live, SIGNED_OUT } from './live.js';
import { followUnread } from './notifications.js';
import { Record } from './record.js';
import { c, custodianPin, fetchPosts, identity, loadWorkspace } from './session.js';
import {
  MAX_DUE_YEARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, TrustError, dayToIso, epochBundle, historyEpochs, invitation, invitationValid,
  keyConfirmation, memberCards, memberKey, planEpochMembers, remember, rotationDue, sealPost,
} from './workspace.js';

const root = document.querySelector('[data-tac-workspace]');
const WS = root.dataset.tacWorkspace;
const ME = root.dataset.tacMe;
const REFERENCE = root.dataset.tacReference;
const $ = (selector, scope = document) => scope.querySelector(selector);
const CATEGORY = Object.fromEntries([...document.querySelectorAll('#concern-category option')].map((o) => [o.value, o.textContent]));
const KIND_LABEL = {
  concern: 'Concern', action: 'Action', update: 'Update', decision: 'Decision', details: "Child's details",
  history_shared: 'Earlier record shared', action_status: 'Action status', acknowledgement: 'Acknowledgement', edit: 'Edit', retraction: 'Retraction',
  rating_change: 'Rating change',
};
const ROLE_WORD = { lead: 'Lead professional', deputy: 'Deputy', member: 'Member', oversight: 'Oversight' };
const RAG_CLASS = { red: 'govuk-tag--red', amber: 'govuk-tag--orange', green: 'govuk-tag--green' };
const RAG_WORD = { red: 'Red', amber: 'Amber', green: 'Green' };
// Posts that change another: shown on their target, once applied.
const EVENT_KINDS = ['acknowledgement', 'action_status', 'edit', 'retraction', 'rating_change'];

const state = {
  detail: null, keys: null, me: null, store: null, record: null, members: new Map(), warnings: [], stopped: [], lastError: null,
};
const live = new Live();
followUnread(live);

// A button; `hidden` finishes its name for screen readers ("Reply" + " to concern #3 from Priya Shah"),
// `extra` 'link' draws it as a link (secondary actions, so a post's actions fit at 320 px).
function button(label, onClick, extra = 'govuk-button--secondary', hidden = '') {
  const b = el('button', { className: extra === 'link' ? 'tac-link-button govuk-link tac-post__link' : `govuk-button ${extra}`, text: label, attrs: { type: 'button' } });
  if (hidden) b.append(el('span', { className: 'govuk-visually-hidden', text: ` ${hidden}` }));
  b.dataset.tacControl = `${label} ${hidden}`;
  b.addEventListener('click', onClick);
  return b;
}

// The name a post goes by in buttons, labels and announcements: "concern #3 from Priya Shah".
function postName(entry) {
  const kind = (KIND_LABEL[entry.kind] || entry.kind).toLowerCase();
  return `${kind} #${entry.seq} from ${entry.opened ? who(entry.opened.header.authorId).name : 'an unverified author'}`;
}

function announce(text) {
  const region = $('[data-tac-announce]');
  region.textContent = '';
  // A fresh node each time, so the same words twice are announced twice.
  window.setTimeout(() => { region.replaceChildren(el('p', { text })); }, 50);
}

function focusPost(postId) {
  const article = document.querySelector(`[data-tac-post="${postId}"] article`);
  if (article) article.focus();
}

// Ask before an act that cannot be taken back, with what follows (GOV.UK's warning text): `anchor` is the
// button that asked; the panel goes after it and takes focus; Cancel gives it back.
function confirmPanel(anchor, { warning, confirmLabel, onConfirm, confirmClass = 'govuk-button--warning' }) {
  const existing = anchor.parentElement.querySelector('[data-tac-confirm]');
  if (existing) existing.remove();
  const text = el('strong', { className: 'govuk-warning-text__text', attrs: { tabindex: '-1' } }, [el('span', { className: 'govuk-visually-hidden', text: 'Warning' }), ` ${warning}`]);
  const yes = el('button', { className: `govuk-button ${confirmClass}`.trim(), text: confirmLabel, attrs: { type: 'button' } });
  const no = el('button', { className: 'tac-link-button govuk-link', text: 'Cancel', attrs: { type: 'button' } });
  const panel = el('div', { attrs: { 'data-tac-confirm': '' } }, [
    el('div', { className: 'govuk-warning-text' }, [el('span', { className: 'govuk-warning-text__icon', text: '!', attrs: { 'aria-hidden': 'true' } }), text]),
    el('div', { className: 'govuk-button-group' }, [yes, no]),
  ]);
  no.addEventListener('click', () => { panel.remove(); anchor.focus(); });
  yes.addEventListener('click', () => {
    setBusy(yes, true, 'Working…');
    act(onConfirm).finally(() => { if (panel.isConnected) panel.remove(); });
  });
  anchor.after(panel);
  text.focus();
}

const dayIso = (date) => `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
function dueWindow() {
  const today = new Date();
  const last = new Date(today);
  last.setFullYear(today.getFullYear() + MAX_DUE_YEARS);
  if (last.getDate() !== today.getDate()) last.setDate(0); // 29 February
  return { min: dayIso(today), max: dayIso(last) };
}

function tooLong(text, what) {
  return text.length > MAX_TEXT_CHARS ? `${what} must be ${MAX_TEXT_CHARS.toLocaleString('en-GB')} characters or fewer` : null;
}

function fail(error, field = 'post-text') {
  showErrors([{ field, message: error.message || String(error) }]);
}

function who(publicId) {
  const m = state.members.get(publicId);
  return m ? { name: m.name, agency: m.agency } : { name: 'Former member', agency: '' };
}

const when = (ms) => new Date(ms).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
const day = (ms) => new Date(ms).toLocaleDateString('en-GB', { dateStyle: 'long' });
const whenIso = (iso) => (iso ? new Date(iso).toLocaleDateString('en-GB', { dateStyle: 'long' }) : 'an unknown date');

// --- loading: the verified record, then the thread ---------------------------------------------------

async function refresh() {
  const loaded = await loadWorkspace(WS);
  Object.assign(state, { detail: loaded.detail, keys: loaded.keys, me: loaded.me, store: loaded.store });
  state.members = memberCards(loaded.detail);
  return loaded;
}

// Fetch the whole thread and assemble it again (on load, and when keys or epochs change).
async function rebuild() {
  await refresh();
  const record = new Record(state.keys, { reference: REFERENCE, nameOf: (id) => who(id).name });
  for (const payload of await fetchPosts(WS)) record.add(payload);
  // A post the socket brought while the thread was being fetched is on the page (and in this device's
  // memory) but may not be in what was fetched: fetch what follows, so a rebuild neither drops it from
  // view nor takes it for withheld by the server (found by tests/browser/test_lead_continuity.py).
  const newest = (r) => (r.entries.length ? r.entries[r.entries.length - 1].seq : 0);
  if (state.record && newest(state.record) > newest(record)) {
    for (const payload of await fetchPosts(WS, newest(record))) record.add(payload);
  }
  record.checkMemory(state.store.memory.workspace(WS));
  state.record = record;
  $('[data-tac-thread]').replaceChildren();
  for (const entry of record.entries) renderPost(entry);
  renderDetails();
  await rememberWhatWasSeen();
  renderTeam();
  renderWarnings();
}

async function rememberWhatWasSeen() {
  const problems = [...state.keys.problems, ...state.record.problems];
  if (problems.length) return; // never store a record that failed its checks as the one to trust
  const forks = await state.store.remember(WS, remember(state.keys, state.store.memory.workspace(WS), state.record.last));
  for (const fork of forks) state.warnings.push(`Your devices disagree about this workspace (${fork}).`);
}

const lead = () => state.keys && state.keys.lead();
const isLead = () => lead() === ME;
// Who may sign the next manifest, from signed state (docs/crypto.md, "Lead continuity"): 'lead', 'deputy',
// 'appointed' (the member a custodians' appointment names) or null.
const signerRole = (pid = ME) => (state.keys && state.keys.manifests.size ? state.keys.signerRole(pid) : null);
// The server's word that someone is still an active member (it can only narrow who is trusted).
function isActive(pid) {
  const card = state.members.get(pid);
  return Boolean(card) && card.state === 'active' && card.is_active !== false;
}
// The deputies the signed membership names who are still active members.
const activeDeputies = () => (state.keys && state.keys.manifests.size ? state.keys.deputies().filter(isActive) : []);

// Who renews the keys, in words: "the lead professional (Sam Lead) or their deputy (Priya Shah)".
function renewers() {
  const names = activeDeputies().map((pid) => who(pid).name);
  const first = `the lead professional (${who(lead()).name})`;
  if (!names.length) return first;
  return `${first} or ${names.length === 1 ? 'their deputy' : 'a deputy'} (${names.join(' or ')})`;
}

// Why nobody can post although the record verifies, or null: the lead has gone and named no deputy (the
// workspace is frozen until the key custodians appoint a lead), or the server names a new lead (a deputy
// taking over, or an appointed lead) whose device has not renewed the keys yet. The server's words say
// only why to wait: who leads is believed from signed manifests alone.
function leadChange() {
  const d = state.detail;
  if (!d || !state.keys || !state.keys.manifests.size) return null;
  if (d.continuity && d.continuity.state === 'frozen') {
    const left = d.continuity.left_at ? ` on ${whenIso(d.continuity.left_at)}` : '';
    return {
      kind: 'frozen',
      heading: 'This workspace is frozen',
      text: `Its lead professional, ${d.continuity.lead_name}, left Team Around the Child${left} and had named no deputy, so nobody can renew its keys and nothing new can be shared. You can still read everything in it. Two of your site's key custodians can appoint a new lead from this team: ask your Team Around the Child administrator.`,
      composer: 'Nothing new can be shared while this workspace is frozen.',
    };
  }
  const signed = lead();
  if (!d.lead || d.lead === signed || isActive(signed)) return null;
  const old = who(signed).name;
  if (d.lead !== ME) {
    const next = who(d.lead).name;
    return {
      kind: 'taking-over',
      heading: `${next} is taking over as lead professional`,
      text: `${next} is taking over as lead professional after ${old} left: their device renews the keys when they next open this workspace. Until then nothing new can be shared.`,
      composer: `Nothing new can be shared until ${next}'s device renews the keys.`,
    };
  }
  // A lead the key custodians appointed (checked against the pin): this device takes over now (maintainKeys).
  if (signerRole() === 'appointed') return null;
  if (signerRole() === 'deputy') {
    // Only the server says the lead has left, and nothing signed can: the deputy confirms before taking
    // the lead, so a server cannot move the lead by marking them gone (they can check with the team).
    const card = state.members.get(signed);
    const left = card && card.left_at ? ` on ${whenIso(card.left_at)}` : '';
    return {
      kind: 'take-over',
      heading: 'Take over as lead professional',
      text: `Team Around the Child says ${old} left${left}. As their deputy you carry this workspace on: if you are unsure, check with a colleague first. Taking over renews the keys without ${old} and names you lead professional; until then nothing new can be shared.`,
      composer: 'Nothing new can be shared until you take over as lead professional.',
      action: { label: 'Take over as lead professional', run: () => renewKeys({ newLead: ME }) },
    };
  }
  return {
    kind: 'refused',
    heading: 'Your device cannot take over this workspace',
    text: `The server names you lead professional after ${old} left, but the signed record does not show that you may take over: you are not a deputy, and no appointment by the key custodians checks out. Your device has not renewed the keys, so nothing new can be shared. Tell your Team Around the Child administrator.`,
    composer: 'Nothing new can be shared until this is resolved.',
  };
}

function myStatus() {
  const listed = state.keys.members().get(ME);
  const mine = c.fingerprint(state.me.signPublic, state.me.boxPublic);
  if (!listed) return 'outside';
  if (!c.sameBytes(listed.fingerprint, mine) && !state.keys.trust(ME, mine)) return 'unconfirmed';
  if (!state.keys.epochKeys.has(state.keys.currentEpoch)) return 'no-key';
  return 'ok';
}

// --- keys: epochs, admissions, re-keying ----------------------------------------------------------------

// A new epoch from the lead's device, or a deputy's (or an appointed lead's). Nobody new is admitted
// unless named in `admit` (the lead pressed Admit after comparing their safety number); everyone in the
// signed membership stays with the newest key the team confirmed for them. `deputies` (the lead only) is
// every deputy from now on.
async function rotate({ remove = null, newLead = null, admit = new Set(), deputies = null } = {}) {
  const pin = await custodianPin();
  const plan = planEpochMembers(state.keys, state.members, {
    myId: ME, myFingerprint: c.fingerprint(state.me.signPublic, state.me.boxPublic), remove, newLead, admit, deputies,
  });
  for (const [pid, reason] of plan.refused) {
    if (admit.has(pid)) throw new TrustError(`${who(pid).name} cannot be admitted: ${reason}. Invite them again.`);
  }
  const epoch = state.keys.currentEpoch + 1;
  const { epochKey, payload } = epochBundle({
    lead: state.me, workspaceId: WS, epoch, prevManifestHash: state.keys.manifestHashes.get(state.keys.currentEpoch),
    members: plan.members, custodian: pin.current,
  });
  const details = state.record.latestDetails();
  const request = { epoch: payload, remove, new_lead: newLead };
  if (deputies) request.deputies = [...deputies];
  await postJSON(`/api/v1/workspaces/${WS}/epochs`, request);
  state.lastError = null;
  // Members who join from this epoch on must still see the child's details: carry them over.
  if (details) {
    const post = sealPost({ identity: state.me, authorId: ME, workspaceId: WS, epoch, epochKey, kind: 'details', body: details.body, prev: state.record.last });
    await postJSON(`/api/v1/workspaces/${WS}/posts`, post);
  }
  await rebuild();
  return plan;
}

// What the lead's device does by itself, and a deputy's: renew the keys on the signed schedule, or when
// someone left; and, when the lead has gone and the server names this professional instead (a deputy
// taking over, or the lead the key custodians appointed), start the epoch that names them lead. And any
// member's device: re-key colleagues whose new key the team has confirmed (never an unconfirmed one).
async function maintainKeys() {
  if (state.stopped.length || myStatus() !== 'ok') return;
  const d = state.detail;
  const role = signerRole();
  const signed = lead();
  if (role === 'appointed' && d.lead === ME && signed !== ME && !isActive(signed)) {
    await renewKeys({ newLead: ME });
  } else if ((role === 'lead' || role === 'deputy') && isActive(signed)) {
    const departed = [...state.keys.members().keys()].some((pid) => {
      // Only the server's word that someone left narrows the next epoch; a member it merely stops showing
      // stays in it (planEpochMembers), so renewing the keys for that would change nothing.
      const card = state.members.get(pid);
      return Boolean(card) && (card.state !== 'active' || card.is_active === false);
    });
    const due = rotationDue(state.keys, state.record.postsInEpoch(state.keys.currentEpoch));
    if (departed || due || d.rotation_required) await renewKeys();
  }
  for (const need of state.detail.needs_rekey || []) await rekey(need);
}

// The lead's and a deputy's devices may both renew the keys at once: the server takes the first epoch and
// answers the second with a conflict. That is no problem to show: read the record again and carry on.
// While this device renews them, a post waits (send), so it goes in the new epoch.
let renewing = null;
async function renewKeys(options = {}) {
  const before = state.keys.currentEpoch;
  renewing = (async () => {
    try {
      await rotate(options);
    } catch (error) {
      if (error.status === 409) {
        await rebuild();
        if (state.keys.currentEpoch > before) return;
      }
      state.lastError = error.message;
      renderWarnings();
    }
  })();
  try { await renewing; } finally { renewing = null; }
}

async function rekey(need) {
  const card = state.members.get(need.member);
  if (!card || !card.sign_public) return;
  const key = memberKey(card);
  if (!state.keys.trust(need.member, key.fingerprint)) return; // nobody has confirmed this key: never wrap for it
  const wraps = need.epochs.filter((n) => state.keys.epochKeys.has(n))
    .map((n) => ({ epoch: n, sealed: c.toB64(c.epochKeyWrap(WS, n, state.keys.epochKeys.get(n), key.boxPublic)) }));
  if (wraps.length) await postJSON(`/api/v1/workspaces/${WS}/rekey`, { member: need.member, wraps });
}

// After comparing a colleague's changed safety number with them: remember it, sign a confirmation the
// team's devices can check, and give them the keys they are entitled to.
async function admitKey(pid) {
  const key = memberKey(state.members.get(pid));
  await state.store.verify(pid, key.fingerprint);
  await postJSON(`/api/v1/workspaces/${WS}/key-confirmations`, keyConfirmation(state.me, ME, key));
  await rebuild();
  for (const need of state.detail.needs_rekey || []) if (need.member === pid) await rekey(need);
  await rebuild();
}

async function markVerified(pid) {
  const key = memberKey(state.members.get(pid));
  await state.store.verify(pid, key.fingerprint);
  await postJSON(`/api/v1/workspaces/${WS}/key-confirmations`, keyConfirmation(state.me, ME, key));
  await rebuild();
}

// The lead admits someone who accepted, after comparing their safety number: a new epoch that includes
// them and, if chosen, the earlier record from a date or all of it, with the reason (an audited act and a
// signed post).
async function admitMember(pid, { share, since, reason }) {
  const card = state.members.get(pid);
  const key = memberKey(card);
  const refused = invitationValid(state.keys, WS, card, key);
  if (refused) throw new TrustError(`${card.name} cannot be admitted: ${refused}. Invite them again.`);
  await state.store.verify(pid, key.fingerprint);
  await rotate({ admit: new Set([pid]) });
  if (share) await shareHistory(pid, { since, reason });
}

async function shareHistory(pid, { since, reason }) {
  const first = Math.min(...[...state.keys.manifests].filter(([, m]) => m.members.some((x) => x.publicId === pid)).map(([n]) => n));
  const epochs = historyEpochs(state.keys, first, since || null);
  const listed = state.keys.members().get(pid);
  if (!epochs.length || !listed) return;
  const wraps = epochs.map((n) => ({ epoch: n, sealed: c.toB64(c.epochKeyWrap(WS, n, state.keys.epochKeys.get(n), listed.boxPublic)) }));
  await postJSON(`/api/v1/workspaces/${WS}/history`, { member: pid, wraps });
  await send('history_shared', { member: pid, epochs, reason, since: since || null });
  await rebuild();
}

// --- the team, from the verified manifest ----------------------------------------------------------------

function safety(fp) {
  return el('span', { className: 'govuk-body-s tac-safety-number', text: c.safetyNumber(fp) });
}

let formCount = 0;
function historyForm(pid, name, onSubmit, submitLabel) {
  formCount += 1;
  const n = formCount;
  const form = el('form', { attrs: { novalidate: '', 'data-tac-admit': pid } });
  const radios = el('div', { className: 'govuk-radios govuk-radios--small' }, [
    ['all', 'Yes, all of it', true], ['since', 'Yes, from a date'], ['none', 'No'],
  ].map(([value, label, checked]) => el('div', { className: 'govuk-radios__item' }, [
    el('input', { className: 'govuk-radios__input', attrs: { id: `history-${n}-${value}`, name: `history-${n}`, type: 'radio', value, ...(checked ? { checked: '' } : {}) } }),
    el('label', { className: 'govuk-label govuk-radios__label', text: label, attrs: { for: `history-${n}-${value}` } }),
  ])));
  const fieldset = el('fieldset', { className: 'govuk-fieldset' }, [
    el('legend', { className: 'govuk-fieldset__legend govuk-fieldset__legend--s', text: `Share the earlier record with ${name}?` }), radios,
  ]);
  const sinceInput = el('input', { className: 'govuk-input govuk-input--width-10', attrs: { id: `history-${n}-date`, type: 'date' } });
  const reasonInput = el('textarea', { className: 'govuk-textarea', attrs: { id: `history-${n}-reason`, rows: '2' } });
  form.append(
    el('div', { className: 'govuk-form-group' }, [fieldset]),
    el('div', { className: 'govuk-form-group' }, [el('label', { className: 'govuk-label', text: 'From (if from a date)', attrs: { for: `history-${n}-date` } }), sinceInput]),
    el('div', { className: 'govuk-form-group' }, [el('label', { className: 'govuk-label', text: 'Why they need the earlier record', attrs: { for: `history-${n}-reason` } }), reasonInput]),
    el('button', { className: 'govuk-button', text: submitLabel, attrs: { type: 'submit' } }),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const choice = form.querySelector(`input[name=history-${n}]:checked`).value;
    const since = sinceInput.value;
    const reason = reasonInput.value.trim();
    if (choice !== 'none' && !reason) { showErrors([{ field: reasonInput.id, message: 'Say why they need the earlier record' }]); return; }
    if (choice === 'since' && !since) { showErrors([{ field: sinceInput.id, message: 'Enter the date to share the record from' }]); return; }
    const submit = form.querySelector('button[type=submit]');
    setBusy(submit, true, 'Working…');
    act(() => onSubmit({ share: choice !== 'none', since: choice === 'since' ? since : null, reason })).finally(() => setBusy(submit, false));
  });
  return form;
}

function renderTeam() {
  const list = $('[data-tac-members]');
  // The list is drawn anew whenever the record changes (a colleague's epoch, a new deputy): keep focus on
  // the member, or the control, the person was on.
  const active = list.contains(document.activeElement) ? document.activeElement : null;
  const focused = active && { member: active.closest('[data-tac-member]')?.dataset.tacMember, control: active.dataset.tacControl };
  list.replaceChildren();
  const warnings = [];
  const manifest = state.keys.current;
  const listed = new Set(manifest.members.map((m) => m.publicId));
  for (const m of manifest.members) {
    const card = state.members.get(m.publicId) || { name: 'Unknown to the server', agency: '', job_title: '', state: 'missing' };
    const item = el('li', { attrs: { 'data-tac-member': m.publicId } }, [
      el('strong', { text: card.name }), el('br'),
      el('span', { className: 'govuk-body-s', text: [card.job_title, card.agency].filter(Boolean).join(', ') }), el('br'),
      el('span', { className: 'govuk-body-s', text: ROLE_WORD[m.role] || 'Member', attrs: { 'data-tac-role': m.role } }),
    ]);
    if (m.publicId === ME && m.role === 'deputy') {
      item.append(el('br'), el('span', { className: 'govuk-body-s', text: `You are a deputy: if ${who(manifest.members.find((x) => x.role === 'lead').publicId).name} leaves Team Around the Child, you carry on as lead professional.` }));
    }
    let shown = m.fingerprint;
    let cardKey = null;
    try { cardKey = card.sign_public ? memberKey(card) : null; } catch { cardKey = null; }
    const changed = cardKey && !c.sameBytes(cardKey.fingerprint, m.fingerprint);
    const confirmed = changed && state.keys.trust(m.publicId, cardKey.fingerprint);
    if (confirmed) shown = cardKey.fingerprint;
    item.append(el('br'), el('span', { className: 'govuk-body-s', text: 'Safety number: ' }));
    const digits = safety(shown);
    digits.dataset.tacSafety = m.publicId;
    item.append(digits);
    if (confirmed && confirmed.how === 'confirmed') {
      item.append(el('br'), el('span', { className: 'govuk-body-s', text: `New key, confirmed by ${who(confirmed.by).name} on ${when(confirmed.atMs)}` }));
    }
    if (changed && !confirmed && m.publicId !== ME) {
      const sentence = `${card.name}'s key changed on ${whenIso(card.key_changed_at)} after a password reset: compare the safety number with them, then admit it.`;
      warnings.push(sentence);
      item.append(el('p', { className: 'govuk-body-s tac-post__problem', text: sentence, attrs: { 'data-tac-key-changed': m.publicId } }),
        el('span', { className: 'govuk-body-s', text: 'Their new safety number: ' }), safety(cardKey.fingerprint), el('br'),
        button(`I have compared it: admit ${card.name}'s new key`, () => act(() => admitKey(m.publicId)), ''));
    } else if (m.publicId !== ME) {
      if (state.store.memory.hasVerified(m.publicId, shown)) item.append(el('br'), el('strong', { className: 'govuk-tag govuk-tag--green', text: 'Verified by you' }));
      else item.append(el('br'), button(`Mark ${card.name} as verified`, () => act(() => markVerified(m.publicId))));
    }
    if (card.state !== 'active' && card.state !== undefined) {
      item.append(el('p', { className: 'govuk-body-s', text: card.state === 'missing' ? 'The server no longer shows this member.' : `${card.state === 'left' ? 'Left' : 'Removed'}: the keys are renewed without them.` }));
    }
    if (isLead() && m.publicId !== ME && card.state === 'active' && myStatus() === 'ok') {
      const remove = button(`Remove ${card.name}`, () => confirmPanel(remove, {
        warning: `${card.name} will no longer see this workspace. The keys are renewed without them, so they cannot read anything posted from now on; what they wrote stays in the record.`,
        confirmLabel: `Yes, remove ${card.name}`, onConfirm: () => rotate({ remove: m.publicId }),
      }), 'govuk-button--warning');
      const makeLead = button(`Make ${card.name} the lead`, () => confirmPanel(makeLead, {
        warning: `${card.name} becomes the lead professional: they admit and remove members from now on, and you stay as a member. The keys are renewed.`,
        confirmLabel: `Yes, make ${card.name} the lead`, onConfirm: () => rotate({ newLead: m.publicId }),
      }));
      item.append(remove, makeLead);
      if (m.role === 'member' || m.role === 'deputy') item.append(deputyButton(m.publicId, card.name, m.role === 'deputy'));
      if ((card.first_epoch || 1) > 1 && !card.history_shared) {
        const details = el('details', { className: 'govuk-details' }, [
          el('summary', { className: 'govuk-details__summary' }, [el('span', { className: 'govuk-details__summary-text', text: `Share the earlier record with ${card.name}` })]),
          el('div', { className: 'govuk-details__text' }, [historyForm(m.publicId, card.name, (choice) => (choice.share ? shareHistory(m.publicId, choice) : null), 'Share')]),
        ]);
        item.append(details);
      }
    }
    list.append(item);
  }
  for (const card of state.detail.members) {
    if (listed.has(card.id)) continue;
    if (card.state === 'active') {
      const sentence = `The server lists ${card.name} as a member, but the signed membership does not: nothing is encrypted for them.`;
      warnings.push(sentence);
      list.append(el('li', { attrs: { 'data-tac-member': card.id } }, [el('strong', { text: card.name }), el('p', { className: 'govuk-body-s tac-post__problem', text: sentence })]));
    } else if (card.state === 'invited') {
      list.append(el('li', { attrs: { 'data-tac-member': card.id } }, [el('strong', { text: card.name }), el('br'), el('span', { className: 'govuk-body-s', text: `${card.job_title}, ${card.agency}` }), el('br'), el('span', { className: 'govuk-body-s', text: 'Invited' })]));
    } else if (card.state === 'accepted') {
      const item = el('li', { attrs: { 'data-tac-member': card.id } }, [el('strong', { text: card.name }), el('br'),
        el('span', { className: 'govuk-body-s', text: `${card.job_title}, ${card.agency}` }), el('br'),
        el('span', { className: 'govuk-body-s', text: 'Accepted, waiting to be admitted' })]);
      if (isLead() && myStatus() === 'ok') {
        let key = null;
        try { key = memberKey(card); } catch (error) { item.append(el('p', { className: 'govuk-body-s tac-post__problem', text: error.message })); }
        const refused = key && invitationValid(state.keys, WS, card, key);
        if (refused) {
          item.append(el('p', { className: 'govuk-body-s tac-post__problem', text: `${card.name} cannot be admitted: ${refused}. Invite them again if they should join.`, attrs: { 'data-tac-refused': card.id } }));
        } else if (key) {
          item.append(el('p', { className: 'govuk-body-s', text: `Compare ${card.name}'s safety number with them (by phone or in person) before you admit them:` }), safety(key.fingerprint));
          item.append(historyForm(card.id, card.name, (choice) => admitMember(card.id, choice), `Admit ${card.name}`));
        }
      }
      list.append(item);
    }
  }
  if (focused && focused.member) {
    const item = list.querySelector(`[data-tac-member="${focused.member}"]`);
    const again = item && focused.control ? [...item.querySelectorAll('[data-tac-control]')].find((b) => b.dataset.tacControl === focused.control) : null;
    if (again) again.focus();
    else if (item) { item.setAttribute('tabindex', '-1'); item.focus(); }
  }
  state.teamWarnings = warnings;
  // A deputy may invite too; only the lead admits (after comparing safety numbers) and shares history.
  $('[data-tac-lead-only]').hidden = !['lead', 'deputy'].includes(signerRole()) || Boolean(leadChange());
  $('[data-tac-member-only]').hidden = isLead();
  renderKeyHistory();
  renderDeputyPrompt();
  const owner = $('[data-tac-owner-select]');
  const chosen = owner.value || ME;
  owner.replaceChildren(...manifest.members.filter((m) => state.members.get(m.publicId)?.state === 'active')
    .map((m) => el('option', { text: m.publicId === ME ? `${who(m.publicId).name} (me)` : `${who(m.publicId).name}, ${who(m.publicId).agency}`, attrs: { value: m.publicId } })));
  owner.value = chosen;
}

// The lead names or drops a deputy: a new epoch whose signed manifest says so (and the server's roles follow).
function deputyButton(pid, name, isDeputy) {
  const others = activeDeputies().filter((x) => x !== pid);
  const toggle = button(isDeputy ? `Stop ${name} being a deputy` : `Make ${name} a deputy`, () => confirmPanel(toggle, isDeputy ? {
    warning: `${name} stays in the team, but will no longer carry on as lead professional if you leave. The keys are renewed.`,
    confirmLabel: `Yes, stop ${name} being a deputy`, onConfirm: () => rotate({ deputies: new Set(others) }),
  } : {
    warning: `${name} becomes a deputy: they can renew the keys and invite professionals, and if you leave Team Around the Child they carry on as lead professional. The keys are renewed.`,
    confirmLabel: `Yes, make ${name} a deputy`, confirmClass: '', onConfirm: () => rotate({ deputies: new Set([...others, pid]) }),
  }));
  return toggle;
}

// The lead of a team of three or more (oversight aside) with no deputy is asked, never made, to name one:
// so that the workspace carries on if they leave.
function renderDeputyPrompt() {
  const box = $('[data-tac-deputy-prompt]');
  const manifest = state.keys.current;
  const team = manifest.members.filter((m) => m.role !== 'oversight' && isActive(m.publicId));
  const eligible = team.filter((m) => m.role === 'member' && m.publicId !== ME);
  const problems = state.keys.problems.length > 0 || (state.record?.problems.length || 0) > 0;
  const show = isLead() && myStatus() === 'ok' && !problems && !leadChange() && team.length >= 3
    && activeDeputies().length === 0 && eligible.length > 0;
  box.hidden = !show;
  if (!show) return;
  const choices = $('[data-tac-deputy-choices]');
  const chosen = choices.querySelector('input:checked')?.value;
  choices.replaceChildren(...eligible.map((m, i) => {
    const id = i === 0 ? 'deputy-choice' : `deputy-choice-${i}`;
    const card = state.members.get(m.publicId);
    return el('div', { className: 'govuk-radios__item' }, [
      el('input', { className: 'govuk-radios__input', attrs: { id, name: 'deputy-choice', type: 'radio', value: m.publicId, ...(m.publicId === chosen ? { checked: '' } : {}) } }),
      el('label', { className: 'govuk-label govuk-radios__label', text: [card.name, card.agency].filter(Boolean).join(', '), attrs: { for: id } }),
    ]);
  }));
}

$('[data-tac-continuity-action]').addEventListener('click', (event) => {
  const change = leadChange();
  if (!change || !change.action) return;
  setBusy(event.currentTarget, true, 'Renewing the keys…');
  const clicked = event.currentTarget;
  act(change.action.run, () => { if (isLead()) announce('You are the lead professional now.'); }).finally(() => setBusy(clicked, false));
});

$('form[data-tac-deputy-form]').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const chosen = form.querySelector('input[name=deputy-choice]:checked');
  if (!chosen) { showErrors([{ field: 'deputy-choice', message: 'Choose who will be your deputy' }]); return; }
  const pid = chosen.value;
  const submit = form.querySelector('button[type=submit]');
  setBusy(submit, true, 'Working…');
  act(() => rotate({ deputies: new Set([...activeDeputies(), pid]) }), () => {
    // The prompt is gone: focus goes to the new deputy in the team list, which now says so.
    const entry = document.querySelector(`[data-tac-member="${pid}"]`);
    if (entry) { entry.setAttribute('tabindex', '-1'); entry.focus(); }
    announce(`${who(pid).name} is now your deputy.`);
  }).finally(() => setBusy(submit, false));
});

// Who renewed the keys when it was not the lead: a deputy, or a lead the key custodians appointed (from
// the signed record: how each manifest was signed). The latest three.
function renderKeyHistory() {
  const list = $('[data-tac-key-history]');
  const lines = [];
  const signedBy = [...(state.keys.signedBy || new Map())].sort(([a], [b]) => b - a);
  for (const [n, by] of signedBy) {
    if (by.how === 'lead') continue;
    const name = who(by.id).name;
    const on = day(state.keys.manifests.get(n).createdMs);
    if (by.how === 'appointed') lines.push(`${name} was appointed lead by the key custodians, and renewed the keys on ${on}`);
    else if (state.keys.lead(n) === by.id && state.keys.lead(n - 1) !== by.id) lines.push(`Keys renewed by ${name}, deputy, on ${on}, taking over as lead professional`);
    else lines.push(`Keys renewed by ${name}, deputy, on ${on}`);
    if (lines.length === 3) break;
  }
  list.replaceChildren(...lines.map((text) => el('li', { text })));
  list.hidden = lines.length === 0;
}

// Everything that is wrong, in one place; posting stops for a record that was rolled back or hides keys,
// or while this member's own key waits for the team.
function renderWarnings() {
  const status = state.keys ? myStatus() : 'ok';
  state.stopped = [...(state.keys?.problems || []), ...(state.record?.problems || [])];
  const lines = [...state.stopped, ...(state.record?.warnings || []), ...(state.teamWarnings || []), ...state.warnings, ...(state.store?.warnings || [])];
  if (state.lastError) lines.push(`The keys could not be renewed: ${state.lastError}`);
  const box = $('[data-tac-warnings]');
  box.hidden = lines.length === 0;
  $('[data-tac-warning-text]').replaceChildren(...lines.map((line) => el('span', { className: 'tac-warning-line', text: line })));
  const waiting = $('[data-tac-waiting]');
  const mine = state.me ? c.fingerprint(state.me.signPublic, state.me.boxPublic) : null;
  const me = state.members.get(ME);
  let waitingText = '';
  if (status === 'unconfirmed') {
    waitingText = `Your key changed on ${whenIso(me && me.key_changed_at)} after a password reset. You are waiting for your team: a colleague must compare your safety number with you (by phone or in person) and admit your new key. Then you can read everything you could before.`;
  } else if (status === 'no-key') {
    waitingText = 'You are waiting for your team: a colleague\'s device will give you the keys to this workspace when they next open it.';
  } else if (status === 'outside') {
    waitingText = 'You are not in the signed membership of this workspace yet: the lead professional admits you.';
  }
  waiting.hidden = !waitingText;
  $('[data-tac-waiting-text]').textContent = waitingText;
  if (mine) $('[data-tac-my-safety]').textContent = c.safetyNumber(mine);
  const change = state.keys ? leadChange() : null;
  const banner = $('[data-tac-continuity]');
  banner.hidden = !change;
  // Set only when it changes: the banner is an alert, said again whenever its words are replaced.
  const heading = $('[data-tac-continuity-heading]');
  const text = $('[data-tac-continuity-text]');
  if (heading.textContent !== (change ? change.heading : '')) heading.textContent = change ? change.heading : '';
  if (text.textContent !== (change ? change.text : '')) text.textContent = change ? change.text : '';
  const takeOver = $('[data-tac-continuity-action]');
  takeOver.hidden = !(change && change.action);
  if (change && change.action) takeOver.textContent = change.action.label;
  const composer = $('form[data-tac-composer]');
  const blocked = state.stopped.length > 0 || status !== 'ok' || Boolean(change);
  composer.hidden = blocked;
  const closed = $('[data-tac-compose-closed]');
  closed.hidden = !(change && state.stopped.length === 0 && status === 'ok');
  closed.textContent = closed.hidden ? '' : change.composer;
  $('[data-tac-stopped]').hidden = !(state.stopped.length > 0);
}

async function act(fn, after = null) {
  clearErrors();
  try { await fn(); } catch (error) { fail(error); return; }
  if (after) after();
}

$('form[data-tac-invite]').addEventListener('submit', async (event) => {
  event.preventDefault();
  const results = $('[data-tac-invite-results]');
  results.replaceChildren();
  const q = $('#invite-search').value.trim();
  if (q.length < 2) { showErrors([{ field: 'invite-search', message: 'Enter at least 2 letters of a name or agency' }]); return; }
  clearErrors();
  let professionals;
  try {
    ({ professionals } = await getJSON(`/api/v1/directory?q=${encodeURIComponent(q)}`));
  } catch (error) { fail(error, 'invite-search'); return; }
  const current = new Set(state.detail.members.filter((m) => ['active', 'invited', 'accepted'].includes(m.state)).map((m) => m.id));
  if (!professionals.length) results.append(el('li', { className: 'govuk-body-s', text: 'Nobody found' }));
  for (const p of professionals) {
    const li = el('li', {}, [el('span', { text: `${p.name}, ${p.job_title}, ${p.agency} ` })]);
    if (current.has(p.id)) li.append(el('span', { className: 'govuk-body-s', text: '(already in the team)' }));
    else li.append(button(`Invite ${p.name}`, () => act(async () => {
      const member = memberKey(p, 'member');
      await postJSON(`/api/v1/workspaces/${WS}/members`, invitation(state.me, WS, member, 'member', state.keys.currentEpoch));
      const next = isLead() ? 'compare their safety number with them and admit them' : 'the lead professional compares their safety number with them and admits them';
      const done = el('li', { className: 'govuk-body-s', text: `${p.name} is invited. When they accept, ${next}.`, attrs: { tabindex: '-1', 'data-tac-invited': p.id } });
      results.replaceChildren(done);
      done.focus();
      await rebuild();
      if (done.isConnected && !document.activeElement?.closest('[data-tac-invite-results]')) done.focus();
    })));
    results.append(li);
  }
});

$('[data-tac-leave]').addEventListener('click', (event) => confirmPanel(event.currentTarget, {
  warning: 'You will no longer see this workspace: your access ends now, and the keys are renewed without you. What you posted stays in the record. Only the lead professional can invite you back.',
  confirmLabel: 'Yes, leave this workspace',
  onConfirm: async () => {
    await postJSON(`/api/v1/workspaces/${WS}/membership/leave`, {});
    window.location.assign('/');
  },
}));

// --- the thread -------------------------------------------------------------------------------------

function renderDetails() {
  const details = state.record.latestDetails();
  if (!details) return;
  const b = details.body;
  $('[data-tac-child-heading]').textContent = b.name || 'Team around the child';
  const rows = [['Name', b.name], ['Date of birth', b.dob], ['NHS number', b.nhs_number], ['Address', b.address], ['Family and household', b.family], ['Notes', b.notes]];
  $('[data-tac-details]').replaceChildren(...rows.filter(([, v]) => v).map(([k, v]) => el('div', { className: 'govuk-summary-list__row' }, [
    el('dt', { className: 'govuk-summary-list__key', text: k }), el('dd', { className: 'govuk-summary-list__value tac-post__text', text: String(v) })])));
}

function mainText(entry) {
  const b = entry.body || {};
  if (entry.kind === 'concern' || entry.kind === 'action') return b.detail || '';
  if (entry.kind === 'history_shared') {
    return `${who(entry.author).name} shared the earlier record${b.since ? ` from ${b.since}` : ''} with ${who(b.member).name}: ${b.reason || 'no reason given'}`;
  }
  return b.text || '';
}

const DONE_WORDS = { accepted: 'Accepted', done: 'Marked done', confirmed: 'Confirmed', reopened: 'Reopened', cancelled: 'Cancelled' };

function statusLine(e) {
  const h = e.opened.header;
  const by = who(h.authorId).name;
  const note = e.opened.body.note ? `: ${e.opened.body.note}` : '';
  if (h.status === 'reassigned') return `Reassigned to ${who(h.ownerId).name} by ${by}${note}`;
  return `${DONE_WORDS[h.status] || h.status} by ${by}${note}`;
}

// Where an action stands, in words: whose move it is next.
function actionState(entry) {
  const owner = who(entry.owner).name;
  return {
    open: `Waiting for ${owner} to accept`, accepted: `Accepted by ${owner}`, done: 'Done — waiting for the lead to confirm',
    confirmed: 'Confirmed', reopened: `Reopened — back with ${owner}`, cancelled: 'Cancelled',
  }[entry.status] || entry.status;
}

// What the rule (actions.js) lets this person do to the action now, as the current epoch's lead sees it
// (a reassignment is asked about for some member other than the owner: the form offers only those).
function mayChange(entry, status) {
  const newOwner = status === 'reassigned' ? (entry.owner === ME ? `${ME}-other` : ME) : null;
  return Boolean(actionChange({ status: entry.status, owner: entry.owner }, { status, author: ME, lead: lead(), newOwner }).after);
}

// A concern's rating change as record.js applied it ({old, new, reason, by, clientTimeMs}), or null if the
// rule ignored it.
function ratingChangeOf(e) {
  return state.record.get(e.opened.header.targetId)?.ratings.find((r) => r.entry === e) || null;
}

function eventLine(e) {
  const h = e.opened.header;
  const author = who(h.authorId);
  const at = when(h.clientTimeMs);
  if (h.kind === 'rating_change') {
    const change = ratingChangeOf(e);
    return change ? `Rating changed from ${change.old} to ${change.new} by ${author.name}, ${at}: ${change.reason || 'no reason given'}` : '';
  }
  if (h.kind === 'acknowledgement') return `Read and accepted by ${author.name}, ${author.agency} (${at})`;
  if (h.kind === 'action_status') return `${statusLine(e)} (${at})`;
  if (h.kind === 'edit') return `Edited by ${author.name} (#${e.seq}, ${at}; the earlier version is kept)`;
  if (h.kind === 'retraction') return `Retracted by ${author.name}: ${e.opened.body.reason || 'no reason given'} (${at})`;
  return '';
}

function isVisibleEvent(entry) {
  return entry.opened && EVENT_KINDS.includes(entry.kind) && state.record.get(entry.opened.header.targetId)?.events.includes(entry);
}

function renderPost(entry) {
  if (isVisibleEvent(entry)) {
    // Shown on its target; its own problems too.
    const target = state.record.get(entry.opened.header.targetId);
    // A status change shown on its own while it was ignored, which the causal order now applies.
    const alone = document.getElementById(`post-${entry.postId}`);
    if (alone && Number(alone.dataset.seq) === entry.seq) alone.remove();
    if (entry.notes.length && target) { target.notes.push(...entry.notes.map((n) => `#${entry.seq}: ${n}`)); entry.notes = []; renderPost(target); }
    return;
  }
  if (entry.opened && entry.kind === 'details') {
    // A lead's device carries the details into each new key epoch; show only real changes in the thread.
    const earlier = state.record.entries.filter((e) => e !== entry && e.opened && e.kind === 'details' && e.seq < entry.seq);
    const previous = earlier[earlier.length - 1];
    if (previous && JSON.stringify(previous.opened.body) === JSON.stringify(entry.opened.body) && !entry.notes.length) return;
  }
  // One node per entry: by post id, unless another entry (a replay, a refused post reusing the id) has it.
  let domId = `post-${entry.postId}`;
  const owner = document.getElementById(domId);
  if (owner && Number(owner.dataset.seq) !== entry.seq) domId = `post-seq-${entry.seq}`;
  let node = document.getElementById(domId);
  if (!node) {
    node = $('[data-tac-post-template]').content.firstElementChild.cloneNode(true);
    node.id = domId;
    node.dataset.tacPost = entry.postId;
    $('[data-tac-thread]').append(node);
  }
  // Someone else's change re-renders this post: keep focus on the control the person was using, or, if it
  // is gone (Acknowledge, once acknowledged), on the post itself.
  const focused = node.contains(document.activeElement) && document.activeElement.closest('[data-buttons]') ? document.activeElement.dataset.tacControl : null;
  node.dataset.seq = entry.seq;
  $('[data-heading]', node).textContent = entry.opened ? `${KIND_LABEL[entry.kind] || entry.kind} #${entry.seq} from ${who(entry.opened.header.authorId).name}${entry.rag ? `, ${entry.rag}` : ''}` : `Refused post #${entry.seq}`;
  renderControls(entry, node);
  if (focused) {
    const again = [...node.querySelectorAll('[data-buttons] [data-tac-control]')].find((b) => b.dataset.tacControl === focused);
    (again || $('article', node)).focus();
  }
}

function renderControls(entry, node) {
  const problem = $('[data-problem]', node);
  const notes = $('[data-notes]', node);
  notes.replaceChildren(...entry.notes.map((n) => el('li', { className: 'tac-post__problem', text: `Warning: ${n}` })));
  notes.hidden = entry.notes.length === 0;
  $('[data-seq]', node).textContent = entry.seq;
  const buttons = $('[data-buttons]', node);
  buttons.replaceChildren();
  if (!entry.opened) {
    node.className = 'tac-post tac-post--refused';
    node.dataset.kind = 'refused';
    $('[data-kind]', node).textContent = 'Refused';
    $('[data-rag]', node).replaceChildren();
    $('[data-author]', node).textContent = 'Not verified';
    $('[data-agency]', node).textContent = 'not shown as anyone\'s';
    $('[data-time]', node).textContent = '';
    $('[data-title]', node).hidden = true;
    $('[data-text]', node).textContent = '';
    $('[data-action-meta]', node).hidden = true;
    $('[data-events]', node).replaceChildren();
    problem.hidden = false;
    problem.classList.add('tac-post__problem');
    problem.textContent = `Refused: ${entry.refused}`;
    return;
  }
  const h = entry.opened.header;
  const author = who(h.authorId);
  // A concern's rating now: the signed one until a rating change (record.js).
  node.className = `tac-post${entry.rag ? ` tac-post--${entry.rag}` : ''}${entry.retractedBy ? ' tac-post--retracted' : ''}`;
  node.dataset.kind = entry.kind;
  $('[data-kind]', node).textContent = KIND_LABEL[entry.kind] || entry.kind;
  const rag = $('[data-rag]', node);
  rag.replaceChildren(...(entry.rag ? [el('strong', { className: `govuk-tag ${RAG_CLASS[entry.rag]}`, text: RAG_WORD[entry.rag] })] : []));
  $('[data-author]', node).textContent = author.name;
  $('[data-agency]', node).textContent = author.agency;
  const time = $('[data-time]', node);
  time.dateTime = new Date(h.clientTimeMs).toISOString();
  time.textContent = when(h.clientTimeMs);
  const body = entry.body || {};
  const title = $('[data-title]', node);
  const titleText = entry.kind === 'concern' ? (CATEGORY[body.category] || body.category || '') : (entry.kind === 'action' ? body.title : '');
  title.hidden = !titleText;
  title.textContent = titleText || '';
  $('[data-text]', node).textContent = entry.kind === 'details' ? "The child's details were recorded or updated." : mainText(entry);
  const meta = $('[data-action-meta]', node);
  meta.hidden = entry.kind !== 'action';
  if (entry.kind === 'action') {
    const due = dayToIso(h.dueDay);
    const overdue = !entry.retractedBy && isOverdue(entry.status, due, dayIso(new Date()));
    meta.replaceChildren(`Owner: ${who(entry.owner).name}${due ? ` · Due ${due}${overdue ? ' (overdue)' : ''}` : ''} · Status: ${entry.status}`, el('br'),
      el('strong', { text: actionState(entry), attrs: { 'data-tac-action-state': '' } }),
      ...(overdue ? [' ', el('strong', { className: 'govuk-tag govuk-tag--red', text: 'Overdue' })] : []));
    meta.dataset.status = entry.status;
    meta.dataset.overdue = overdue ? 'true' : 'false';
  }
  problem.hidden = entry.opened.keyTrust === 'manifest';
  problem.textContent = entry.opened.keyTrust === 'confirmed'
    ? `Signed with ${author.name}'s new key, which ${who(entry.opened.confirmedBy).name} confirmed by comparing safety numbers.`
    : (entry.opened.keyTrust === 'mine' ? `Signed with ${author.name}'s new key, which you confirmed.` : '');
  problem.classList.toggle('tac-post__problem', false);
  $('[data-events]', node).replaceChildren(...entry.events.map((e) => el('li', { text: eventLine(e) })));
  const parentLine = $('[data-parent]', node);
  const parent = h.parentId ? state.record.get(h.parentId) : null;
  parentLine.hidden = !parent;
  if (parent) {
    parentLine.replaceChildren('In reply to ', el('a', { className: 'govuk-link', text: postName(parent), attrs: { href: `#${document.querySelector(`[data-tac-post="${parent.postId}"]`)?.id || `post-${parent.postId}`}` } }));
  }
  if (entry.kind === 'details' || entry.kind === 'history_shared' || entry.retractedBy || state.stopped.length || myStatus() !== 'ok' || leadChange()) return;
  const name = postName(entry);
  const after = (what) => () => { focusPost(entry.postId); announce(`${what} ${name}.`); };
  if (h.authorId !== ME && !entry.acks.has(ME)) {
    buttons.append(button('Acknowledge', () => act(() => send('acknowledgement', {}, { targetId: entry.postId }), after('You acknowledged')), 'govuk-button--secondary', name));
  }
  const may = (status) => entry.kind === 'action' && mayChange(entry, status);
  const status = (to, note = '') => send('action_status', { note }, { targetId: entry.postId, status: to });
  // One button for the next step (Accept, else Mark done; Confirm done); the other changes are links.
  if (may('accepted')) {
    buttons.append(button('Accept', () => act(() => status('accepted'), after('You accepted')), 'govuk-button--secondary', name));
  }
  const markDone = () => inline(node, `Completion note for ${name}: what was done`, (note) => status('done', note),
    { required: 'Enter a completion note: say what was done', done: after('You marked done') });
  if (may('done') && !may('accepted')) buttons.append(button('Mark done', markDone, 'govuk-button--secondary', name));
  if (may('confirmed')) {
    buttons.append(button('Confirm done', () => act(() => status('confirmed'), after('You confirmed')), 'govuk-button--secondary', name));
  }
  const links = el('p', { className: 'govuk-body-s tac-post__links' });
  links.append(button('Reply', () => {
    $('[data-tac-reply-to]').value = entry.postId;
    $('[data-tac-replying-to]').textContent = name;
    $('[data-tac-replying]').hidden = false;
    $('#post-text').focus();
  }, 'link', `to ${name}`));
  if (may('done') && may('accepted')) links.append(button('Mark done', markDone, 'link', name));
  if (may('reassigned')) {
    links.append(button('Reassign', () => reassignForm(node, entry, name, after('You reassigned')), 'link', name));
  }
  if (may('cancelled')) {
    links.append(button('Cancel action', () => inline(node, `Why is ${name} cancelled?`, (note) => status('cancelled', note),
      { required: 'Say why the action is cancelled', done: after('You cancelled') }), 'link', name));
  }
  if (may('reopened')) {
    links.append(button('Reopen', () => inline(node, `Why reopen ${name}?`, (note) => status('reopened', note),
      { required: 'Say why the action is reopened', done: after('You reopened') }), 'link', name));
  }
  // The rule record.js applies: the concern's author, or the lead (of the current epoch, where the change goes).
  if (entry.kind === 'concern' && (h.authorId === ME || isLead())) {
    links.append(button('Change rating', () => ratingForm(node, entry, name, after('You changed the rating of')), 'link', `of ${name}`));
  }
  if (h.authorId === ME) {
    links.append(button('Edit', () => inline(node, `New text for ${name}`, (text) => {
      const edited = { ...entry.body };
      if (entry.kind === 'concern' || entry.kind === 'action') edited.detail = text; else edited.text = text;
      return send('edit', edited, { targetId: entry.postId });
    }, { initial: mainText(entry), done: after('You edited') }), 'link', name));
    links.append(button('Retract', () => inline(node, `Reason for retracting ${name} (the record is kept)`, (reason) => send('retraction', { reason }, { targetId: entry.postId }),
      { required: 'Say why you are retracting it', done: after('You retracted') }), 'link', name));
  }
  buttons.append(links);
}

// The frame of a small form under a post: its field group, a submit button, and a Cancel that gives focus
// back to the control that opened it (or, if a re-render replaced that, its twin, or the post).
function formUnderPost(node, opener, group, saveLabel, attrs = {}) {
  const cancel = el('button', { className: 'tac-link-button govuk-link', text: 'Cancel', attrs: { type: 'button' } });
  const save = el('button', { className: 'govuk-button', text: saveLabel, attrs: { type: 'submit' } });
  const form = el('form', { className: 'tac-inline', attrs: { novalidate: '', ...attrs } }, [group, el('div', { className: 'govuk-button-group' }, [save, cancel])]);
  cancel.addEventListener('click', () => {
    form.remove();
    clearErrors();
    const back = opener && opener.isConnected ? opener : [...node.querySelectorAll('[data-tac-control]')].find((b) => b.dataset.tacControl === opener?.dataset?.tacControl);
    (back || $('article', node)).focus();
  });
  return { form, save };
}

// A small form under a post (a completion note, a reason, new text), with the GOV.UK character count and
// a Cancel that gives focus back to the button that opened it.
let inlineCount = 0;
function inline(node, label, onSubmit, { initial = '', required = null, done = () => {} } = {}) {
  const opener = document.activeElement;
  const existing = $('form.tac-inline', node);
  if (existing) existing.remove();
  inlineCount += 1;
  const id = `inline-${inlineCount}`;
  const textarea = el('textarea', { className: 'govuk-textarea govuk-js-character-count', attrs: { id, rows: '2', 'aria-describedby': `${id}-info` } });
  textarea.value = initial;
  const group = el('div', { className: 'govuk-form-group govuk-character-count', attrs: { 'data-module': 'govuk-character-count', 'data-maxlength': String(MAX_TEXT_CHARS) } }, [
    el('label', { className: 'govuk-label', text: label, attrs: { for: id } }), textarea,
    el('div', { className: 'govuk-hint govuk-character-count__message', text: `You can enter up to ${MAX_TEXT_CHARS} characters`, attrs: { id: `${id}-info` } }),
  ]);
  const { form, save } = formUnderPost(node, opener, group, 'Save');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const text = textarea.value.trim();
    const problem = (required && !text ? required : null) || tooLong(text, 'The text');
    if (problem) { fail(new Error(problem), id); return; }
    setBusy(save, true, 'Saving…');
    try { await onSubmit(text); form.remove(); done(); } catch (error) { fail(error, id); } finally { setBusy(save, false); }
  });
  $('article', node).append(form);
  new CharacterCount(group);
  textarea.focus();
}

// The lead hands an action to another active member (who then accepts it): a GOV.UK select under the
// post, built like inline() with a Cancel that gives focus back.
function reassignForm(node, entry, name, done) {
  const opener = document.activeElement;
  const existing = $('form.tac-inline', node);
  if (existing) existing.remove();
  inlineCount += 1;
  const id = `inline-${inlineCount}`;
  const choices = state.keys.current.members.filter((m) => m.publicId !== entry.owner && state.members.get(m.publicId)?.state === 'active');
  const select = el('select', { className: 'govuk-select', attrs: { id, name: id } }, [
    el('option', { text: 'Choose a member', attrs: { value: '' } }),
    ...choices.map((m) => el('option', { text: m.publicId === ME ? `${who(m.publicId).name} (me)` : `${who(m.publicId).name}, ${who(m.publicId).agency}`, attrs: { value: m.publicId } })),
  ]);
  const group = el('div', { className: 'govuk-form-group' }, [el('label', { className: 'govuk-label', text: `Who should ${name} go to?`, attrs: { for: id } }), select]);
  const { form, save } = formUnderPost(node, opener, group, 'Reassign', { 'data-tac-reassign': '' });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    if (!select.value) { fail(new Error('Choose who the action goes to'), id); return; }
    setBusy(save, true, 'Saving…');
    try {
      await send('action_status', { note: '' }, { targetId: entry.postId, status: 'reassigned', ownerId: select.value });
      form.remove();
      done();
    } catch (error) { fail(error, id); } finally { setBusy(save, false); }
  });
  $('article', node).append(form);
  select.focus();
}

// The concern's author or the lead changes its rating: GOV.UK radios for the new rating (the ratings it
// does not have now, since a change to the same one is ignored) and the reason, required, with the
// character count; built like inline(), with a Cancel that gives focus back.
function ratingForm(node, entry, name, done) {
  const opener = document.activeElement;
  const existing = $('form.tac-inline', node);
  if (existing) existing.remove();
  inlineCount += 1;
  const id = `inline-${inlineCount}`;
  // The first radio carries the field's id, so the error summary links to it.
  const radioId = (rag, i) => (i === 0 ? `${id}-rag` : `${id}-rag-${rag}`);
  const radios = el('div', { className: 'govuk-radios govuk-radios--small govuk-radios--inline' }, ['red', 'amber', 'green'].filter((rag) => rag !== entry.rag)
    .map((rag, i) => el('div', { className: 'govuk-radios__item' }, [
      el('input', { className: 'govuk-radios__input', attrs: { id: radioId(rag, i), name: `${id}-rag`, type: 'radio', value: rag } }),
      el('label', { className: 'govuk-label govuk-radios__label', text: RAG_WORD[rag], attrs: { for: radioId(rag, i) } }),
    ])));
  const ragGroup = el('div', { className: 'govuk-form-group' }, [el('fieldset', { className: 'govuk-fieldset', attrs: { 'aria-describedby': `${id}-rag-hint` } }, [
    el('legend', { className: 'govuk-fieldset__legend govuk-fieldset__legend--s', text: `New rating for ${name}` }),
    el('div', { className: 'govuk-hint', text: `It is ${entry.rag || 'not rated'} now.`, attrs: { id: `${id}-rag-hint` } }), radios,
  ])]);
  const textarea = el('textarea', { className: 'govuk-textarea govuk-js-character-count', attrs: { id, rows: '2', 'aria-describedby': `${id}-info` } });
  const reasonGroup = el('div', { className: 'govuk-form-group govuk-character-count', attrs: { 'data-module': 'govuk-character-count', 'data-maxlength': String(MAX_TEXT_CHARS) } }, [
    el('label', { className: 'govuk-label', text: 'Why has the rating changed?', attrs: { for: id } }), textarea,
    el('div', { className: 'govuk-hint govuk-character-count__message', text: `You can enter up to ${MAX_TEXT_CHARS} characters`, attrs: { id: `${id}-info` } }),
  ]);
  const { form, save } = formUnderPost(node, opener, el('div', {}, [ragGroup, reasonGroup]), 'Change rating', { 'data-tac-rating': '' });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const chosen = form.querySelector(`input[name="${id}-rag"]:checked`);
    const reason = textarea.value.trim();
    const errors = [];
    if (!chosen) errors.push({ field: `${id}-rag`, message: 'Choose the new rating' });
    const problem = (!reason ? 'Say why the rating changed' : null) || tooLong(reason, 'The reason');
    if (problem) errors.push({ field: id, message: problem });
    if (errors.length) { showErrors(errors); return; }
    setBusy(save, true, 'Saving…');
    try {
      await send('rating_change', { reason }, { targetId: entry.postId, rag: chosen.value });
      form.remove();
      done();
    } catch (error) { fail(error, id); } finally { setBusy(save, false); }
  });
  $('article', node).append(form);
  new CharacterCount(reasonGroup);
  document.getElementById(`${id}-rag`).focus();
}

// A post from the live socket, in order after what the page has. A post from an epoch this page has not
// verified means the keys moved: assemble the thread again from the verified record.
async function receive(payload) {
  if (!state.record) return;
  if (state.record.bySeq.has(payload.seq) && state.record.bySeq.get(payload.seq).postId === payload.post_id) return;
  if (!state.keys.manifests.has(payload.epoch) || !state.keys.epochKeys.has(payload.epoch)) { await rebuild(); return; }
  const changed = state.record.add(payload);
  // An action's status posts and a concern's rating changes are applied or ignored again by the rule
  // whenever one arrives: show each anew.
  const statusPosts = changed.flatMap((e) => e.received.filter((r) => ['action_status', 'rating_change'].includes(r.kind) && !changed.includes(r)));
  for (const entry of [...changed, ...statusPosts]) renderPost(entry);
  if (changed.some((e) => e.opened && e.kind === 'details')) renderDetails();
  const arrived = changed.find((e) => e.seq === payload.seq);
  if (arrived && arrived.opened && arrived.opened.header.authorId !== ME) noticeNew(arrived);
  await rememberWhatWasSeen();
  renderWarnings();
  markReadSoon(payload.seq);
}

// A post from someone else: said briefly to screen readers (author, kind, rating), and, if it landed below
// what is on screen, counted in a "N new posts" link that jumps to the first of them.
const unseen = [];
const seenObserver = new IntersectionObserver((items) => {
  for (const item of items) {
    if (!item.isIntersecting) continue;
    seenObserver.unobserve(item.target);
    const i = unseen.indexOf(item.target);
    if (i >= 0) unseen.splice(i, 1);
  }
  renderNewPosts();
});

function noticeNew(entry) {
  const h = entry.opened.header;
  const author = who(h.authorId);
  if (entry.kind === 'rating_change') {
    const change = ratingChangeOf(entry);
    const target = state.record.get(h.targetId);
    announce(change ? `Rating changed from ${change.old} to ${change.new} by ${author.name}${target ? `: ${postName(target)}` : ''}.` : `A rating change from ${author.name} was ignored.`);
    return;
  }
  if (EVENT_KINDS.includes(entry.kind)) {
    const target = state.record.get(h.targetId);
    announce(`${eventLine(entry).replace(/ \(.*\)$/, '')}${target ? `: ${postName(target)}` : ''}.`);
    return;
  }
  announce(`New ${(KIND_LABEL[entry.kind] || entry.kind).toLowerCase()} from ${author.name}${author.agency ? `, ${author.agency}` : ''}${h.rag ? `, rated ${h.rag}` : ''}.`);
  const node = document.querySelector(`[data-tac-post="${entry.postId}"]`);
  if (node && node.getBoundingClientRect().top > window.innerHeight) {
    unseen.push(node);
    seenObserver.observe(node);
    renderNewPosts();
  }
}

function renderNewPosts() {
  const bar = $('[data-tac-new-posts-bar]');
  bar.hidden = unseen.length === 0;
  if (!unseen.length) return;
  const link = $('[data-tac-new-posts]');
  link.textContent = unseen.length === 1 ? '1 new post' : `${unseen.length} new posts`;
  link.href = `#${unseen[0].id}`;
}

$('[data-tac-new-posts]').addEventListener('click', (event) => {
  event.preventDefault();
  const first = unseen[0];
  if (!first) return;
  first.scrollIntoView({ block: 'start' });
  $('article', first).focus({ preventScroll: true });
});

// Posts shown live count as read: the read position follows them (once a second at most), while the page
// is in view.
let readTimer = null;
let readUpTo = 0;
function markReadSoon(seq) {
  readUpTo = Math.max(readUpTo, seq);
  if (readTimer || document.visibilityState !== 'visible') return;
  readTimer = window.setTimeout(() => {
    readTimer = null;
    postJSON(`/api/v1/workspaces/${WS}/read`, { seq: readUpTo }).catch(() => {});
  }, 1000);
}
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible' && readUpTo) markReadSoon(readUpTo); });

async function send(kind, body, fields = {}) {
  clearErrors();
  if (renewing) await renewing.catch(() => {});
  if (state.stopped.length) throw new Error(`Posting is stopped: ${state.stopped[0]}`);
  const change = leadChange();
  if (change) throw new Error(change.composer);
  if (state.detail.rotation_required && !signerRole()) throw new Error(`A member has left: wait for ${renewers()} to renew the keys.`);
  const epoch = state.keys.currentEpoch;
  const epochKey = state.keys.epochKeys.get(epoch);
  if (!epochKey) throw new Error('You are waiting for your team to give you the keys to this workspace.');
  const post = sealPost({ identity: state.me, authorId: ME, workspaceId: WS, epoch, epochKey, kind, body, prev: state.record.last, ...fields });
  return live.post(WS, post);
}

// --- the composer -----------------------------------------------------------------------------------

const composer = $('form[data-tac-composer]');
function showKind() {
  const kind = composer.querySelector('input[name=kind]:checked').value;
  for (const part of composer.querySelectorAll('[data-tac-for]')) part.hidden = part.dataset.tacFor !== kind;
  $('[data-tac-text-label]').textContent = { concern: 'What is the concern?', action: 'Details (optional)', update: 'Update', decision: 'What was decided?' }[kind];
}
for (const radio of composer.querySelectorAll('input[name=kind]')) radio.addEventListener('change', showKind);
showKind();
$('[data-tac-cancel-reply]').addEventListener('click', () => { $('[data-tac-reply-to]').value = ''; $('[data-tac-replying]').hidden = true; });

composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const kind = composer.querySelector('input[name=kind]:checked').value;
  const text = $('#post-text').value.trim();
  const parentId = $('[data-tac-reply-to]').value || undefined;
  let body; let fields = { parentId };
  const long = tooLong(text, kind === 'concern' ? 'The concern' : 'The text');
  if (long) { showErrors([{ field: 'post-text', message: long }]); return; }
  if (kind === 'concern') {
    if (!text) { showErrors([{ field: 'post-text', message: 'Describe the concern' }]); return; }
    body = { category: $('#concern-category').value, detail: text };
    fields.rag = composer.querySelector('input[name=rag]:checked').value;
  } else if (kind === 'action') {
    const title = $('#action-title').value.trim();
    if (!title) { showErrors([{ field: 'action-title', message: 'Say what needs doing' }]); return; }
    if (title.length > MAX_TITLE_CHARS) { showErrors([{ field: 'action-title', message: `What needs doing must be ${MAX_TITLE_CHARS} characters or fewer` }]); return; }
    const due = $('#action-due').value;
    const { min, max } = dueWindow();
    if (due && (due < min || due > max)) {
      showErrors([{ field: 'action-due', message: `The due date must be today or later, and no more than ${MAX_DUE_YEARS} years ahead` }]);
      return;
    }
    body = { title, detail: text };
    fields = { ...fields, ownerId: $('#action-owner').value, due: $('#action-due').value || '', status: 'open' };
  } else {
    if (!text) { showErrors([{ field: 'post-text', message: 'Write something to post' }]); return; }
    body = { text };
  }
  const submit = $('[data-tac-post-button]');
  setBusy(submit, true, 'Posting…');
  $('[data-tac-posted]').hidden = true;
  try {
    const accepted = await send(kind, body, fields);
    composer.reset();
    $('[data-tac-reply-to]').value = '';
    $('[data-tac-replying]').hidden = true;
    showKind();
    // Say it was sent, where focus goes next, with a way to the post.
    const posted = $('[data-tac-posted]');
    const kindWord = (KIND_LABEL[kind] || kind).toLowerCase();
    posted.replaceChildren(`Your ${kindWord} was posted as #${accepted.seq}. `,
      el('a', { className: 'govuk-link', text: 'Go to it in the thread', attrs: { href: `#post-${accepted.post_id}` } }));
    posted.hidden = false;
    posted.focus();
  } catch (error) {
    fail(error);
  } finally {
    setBusy(submit, false);
  }
});

// --- start ------------------------------------------------------------------------------------------

function stopForGood(error) {
  // A record that cannot be believed at all: show why, and nothing from it.
  state.stopped = [error.message];
  $('[data-tac-thread]').replaceChildren();
  $('[data-tac-members]').replaceChildren();
  composer.hidden = true;
  $('[data-tac-stopped]').hidden = false;
  const box = $('[data-tac-warnings]');
  box.hidden = false;
  $('[data-tac-warning-text]').replaceChildren(el('span', { className: 'tac-warning-line', text: `This workspace's record could not be verified, so nothing from it is shown: ${error.message}` }));
  state.record = null;
  renderConnection();
}

let rebuilding = null;
function rebuildSoon() {
  // One rebuild at a time; events that arrive meanwhile are covered by the next one.
  rebuilding = (rebuilding || Promise.resolve()).then(() => rebuild()).then(maintainKeys).then(renderWarnings)
    .catch((error) => (error instanceof TrustError ? stopForGood(error) : fail(error, 'main-content')));
  return rebuilding;
}

// "Live" only while the socket is open and the record has been read; after the session ends, say so.
function renderConnection() {
  const line = $('[data-tac-connection]');
  if (live.closedForGood) {
    const next = encodeURIComponent(window.location.pathname);
    line.replaceChildren(`${live.endReason || SIGNED_OUT} `, el('a', { className: 'govuk-link', text: 'Sign in again', attrs: { href: `/accounts/sign-in/?next=${next}` } }));
    line.classList.add('govuk-!-font-weight-bold');
    composer.hidden = true;
    return;
  }
  if (state.locked) line.textContent = 'Not live: unlock your encryption keys to read this workspace.';
  else if (state.loadFailed) line.textContent = 'Not live: this workspace could not be read.';
  else if (state.stopped.length && !state.record) line.textContent = 'Not live: this workspace\'s record could not be verified.';
  else if (!state.record) line.textContent = live.connected ? 'Connected, reading the record…' : 'Connecting…';
  else line.textContent = live.connected ? 'Live: new posts appear here as they are made.' : 'Reconnecting…';
}

live.addEventListener('status', ({ detail }) => {
  live.connected = detail.connected;
  renderConnection();
});
// The idle sign-out (idle.js) ends the session for every part of the page.
// The socket may have noticed first (its own check, at the same moment): the idle timer knows why.
document.addEventListener('tac:session-ended', (event) => {
  const inactive = event.detail && event.detail.reason === 'inactive';
  const reason = inactive ? 'You have been signed out because you were inactive. Sign in again to carry on.' : SIGNED_OUT;
  if (live.closedForGood) {
    if (inactive) { live.endReason = reason; renderConnection(); }
  } else live.end(reason);
});
live.addEventListener('post', ({ detail }) => {
  if (detail.workspace === WS) receive(detail.post).catch((error) => (error instanceof TrustError ? stopForGood(error) : fail(error)));
});
for (const type of ['epoch.created', 'membership.accepted', 'membership.changed', 'keys.added', 'key.confirmed']) {
  live.addEventListener(type, ({ detail }) => { if (detail.workspace === WS) rebuildSoon(); });
}
live.addEventListener('membership.ended', ({ detail }) => {
  if (detail.workspace !== WS) return;
  composer.hidden = true;
  showErrors([{ field: 'main-content', message: 'You are no longer a member of this workspace.' }]);
});

(async () => {
  // A tab without this session's keys (a second tab, opened fresh) asks for the password here, in place.
  try {
    await identity();
  } catch (error) {
    if (error.message !== 'locked') throw error;
    const box = $('[data-tac-unlock]');
    box.hidden = false;
    state.locked = true;
    renderConnection();
    await keysUnlocked(box);
    state.locked = false;
    box.hidden = true;
  }
  await rebuildSoon();
  renderConnection();
  if (!state.record) return;
  // A link to a post (a notification's, "#post-<id>") arrives before the thread is drawn: go to it now.
  const linked = window.location.hash.startsWith('#post-') && document.getElementById(window.location.hash.slice(1));
  if (linked) {
    linked.scrollIntoView({ block: 'start' });
    if (!linked.hasAttribute('tabindex')) linked.setAttribute('tabindex', '-1');
    linked.focus({ preventScroll: true });
  }
  live.subscribe(WS, state.record.entries.length ? state.record.entries[state.record.entries.length - 1].seq : 0);
  if (state.detail.last_seq) postJSON(`/api/v1/workspaces/${WS}/read`, { seq: state.detail.last_seq }).catch(() => {});
})().catch((error) => {
  state.loadFailed = !state.record;
  renderConnection();
  fail(error, 'main-content');
});
