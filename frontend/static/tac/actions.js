// An action's life: the twin of tacprotocol/actions.py, whose table is the rule (docs/protocol.md,
// "Actions"). The server applies it to its summary; every reader applies it again to the signed posts
// (record.js), so the two must agree word for word (tests/browser/test_action_rule_agrees.py).
//
// | status     | from                     | by                    | then                                  |
// | accepted   | open, reopened           | the owner             | accepted                              |
// | done       | open, accepted, reopened | the owner or the lead | done (the note says what was done)    |
// | confirmed  | done                     | the lead              | confirmed (finished)                  |
// | reopened   | done, cancelled          | the owner or the lead | reopened (the owner's again)          |
// | reassigned | open, accepted, reopened | the lead              | open, owned by the member it names    |
// | cancelled  | open, accepted, reopened | the owner or the lead | cancelled (the reason says why)       |
//
// "The lead" is the lead professional when the change is made; "the owner" is the action's owner at that
// point (a reassignment moves it).

// What an action can be; and what an action_status post may say.
export const STATES = ['open', 'accepted', 'done', 'confirmed', 'reopened', 'cancelled'];
export const CHANGES = ['accepted', 'done', 'confirmed', 'reopened', 'reassigned', 'cancelled'];
// Still the owner's to do: what can be overdue.
export const PENDING = ['open', 'accepted', 'reopened'];

const OWNER = 'owner';
const LEAD = 'lead';
export const RULES = {
  accepted: [['open', 'reopened'], [OWNER]],
  done: [['open', 'accepted', 'reopened'], [OWNER, LEAD]],
  confirmed: [['done'], [LEAD]],
  reopened: [['done', 'cancelled'], [OWNER, LEAD]],
  reassigned: [PENDING, [LEAD]],
  cancelled: [PENDING, [OWNER, LEAD]],
};
const WHO = { owner: 'its owner', lead: 'the lead professional', 'owner,lead': 'its owner or the lead professional' };

// The action's state ({status, owner}) after `author` posts `status`: {after, refused: ''}, or
// {after: null, refused: why}. Ids are compared, never interpreted; a missing newOwner is null.
export function change(state, { status, author, lead, newOwner = null }) {
  const rule = Object.hasOwn(RULES, status) ? RULES[status] : null;
  if (!rule) return { after: null, refused: `an action status is one of ${CHANGES.join(', ')}` };
  const [sources, who] = rule;
  const roles = new Set();
  if (author === state.owner) roles.add(OWNER);
  if (author === lead) roles.add(LEAD);
  if (!who.some((role) => roles.has(role))) return { after: null, refused: `only ${WHO[who.join(',')]} can make an action ${status}` };
  if (!sources.includes(state.status)) return { after: null, refused: `an action that is ${state.status} cannot be ${status}` };
  if (status === 'reassigned') {
    if (newOwner === null || newOwner === undefined) return { after: null, refused: 'a reassignment names the new owner' };
    if (newOwner === state.owner) return { after: null, refused: 'a reassignment names someone other than the current owner' };
    return { after: { status: 'open', owner: newOwner }, refused: '' };
  }
  if (newOwner !== null && newOwner !== undefined) return { after: null, refused: 'only a reassignment names an owner' };
  return { after: { status, owner: state.owner }, refused: '' };
}

// Days as ISO strings (YYYY-MM-DD), which compare in order; no due date is never overdue.
export function overdue(status, dueIso, todayIso) {
  return PENDING.includes(status) && Boolean(dueIso) && dueIso < todayIso;
}
