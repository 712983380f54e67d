// JSON requests to the server with Django's CSRF token, and error display the GOV.UK way: in the error
// summary, linked to the field, and at the field itself, with "Error: " before the page title.

const SIGN_IN = '/accounts/sign-in/';
const TWO_FACTOR = '/accounts/two-factor/';
const REVERIFY = '/accounts/two-factor/check-again/';

// What a failed request means to the person, and what to do: never a bare status code.
export const SERVER_TROUBLE = 'Something went wrong on the server. Try again in a few minutes.';
export const SIGNED_OUT = 'You have been signed out. Sign in again to carry on.';
export const REVERIFY_NEEDED = 'For your security, enter a new security code to carry on.';
export const PAGE_EXPIRED = 'This page has expired. Reload the page and try again.';
export const UNREACHABLE = 'The server could not be reached. Check your connection and try again.';

export class RequestError extends Error {
  constructor(message, { status = null, code = null, reason = null } = {}) {
    super(message);
    this.name = 'RequestError';
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}

function csrfToken() {
  const input = document.querySelector('input[name=csrfmiddlewaretoken]');
  return input ? input.value : '';
}

function here() {
  return encodeURIComponent(window.location.pathname + window.location.search);
}

// A signed-out or half-signed-in session asking for a page (not an /api/ path) is redirected to the
// sign-in or two-factor page, and fetch follows: the answer is that page's HTML, with a 200.
function redirectedTo(response) {
  if (!response.redirected || !response.url) return null;
  const path = new URL(response.url, window.location.href).pathname;
  if (path === SIGN_IN || path === TWO_FACTOR) return SIGNED_OUT;
  if (path === REVERIFY) return REVERIFY_NEEDED;
  return null;
}

function refusal(reason) {
  const why = (reason || '').trim().replace(/\.+$/, '');
  if (!why || /^you may not do that$/i.test(why)) return 'You may not do that.';
  return `You may not do that: ${why}.`;
}

// The words for a failed answer. `data` is the parsed JSON body, or null when the body was not JSON.
function explain(response, data) {
  const code = (data && data.error) || null;
  const reason = (data && typeof data.reason === 'string' && data.reason) || '';
  const { status } = response;
  if (status === 401 || code === 'not_signed_in' || code === '2fa_required') return SIGNED_OUT;
  if (status >= 500 || !data) return SERVER_TROUBLE;
  if (code === 'csrf_failed') return PAGE_EXPIRED;
  if (status === 403) return refusal(reason);
  if (status === 429) return reason || 'Too many requests. Wait a minute and try again.';
  // Other refusals (invalid, conflict, not found) keep the server's reason as it is: callers put it in
  // their own sentences ("The keys could not be renewed: ...").
  return reason || SERVER_TROUBLE;
}

async function request(url, options) {
  let response;
  try {
    response = await fetch(url, { credentials: 'same-origin', ...options });
  } catch {
    throw new RequestError(UNREACHABLE);
  }
  const redirected = redirectedTo(response);
  if (redirected) throw new RequestError(redirected, { status: 401, code: 'not_signed_in' });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok || data === null) {
    throw new RequestError(explain(response, data), {
      status: response.status, code: (data && data.error) || null, reason: (data && data.reason) || null,
    });
  }
  return data;
}

export function postJSON(url, body) {
  return request(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken(), Accept: 'application/json' },
    body: JSON.stringify(body),
  });
}

const STATUS_URL = '/accounts/api/v1/session';

// How long this session has left, asked without restarting its idle clock (idle.js; live.js after a
// refused handshake). null when the server cannot be reached; { ended: true } when the session has ended.
export async function sessionStatus() {
  try {
    const response = await fetch(STATUS_URL, {
      credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
    });
    if (response.status === 401 || response.status === 403) return { ended: true };
    if (!response.ok) return null;
    const answer = await response.json();
    return typeof answer.seconds_left === 'number' ? { secondsLeft: answer.seconds_left } : null;
  } catch {
    return null;
  }
}

export function getJSON(url) {
  return request(url, { headers: { Accept: 'application/json' } });
}

// --- showing errors ------------------------------------------------------------------------------------

const TITLE_PREFIX = 'Error: ';
const CONTROL_ERROR = { INPUT: 'govuk-input--error', TEXTAREA: 'govuk-textarea--error', SELECT: 'govuk-select--error' };
const linkedSummaries = new WeakSet();

// A message that asks the person to sign in (again) links to where they can, and back here after.
function hrefFor(field, message) {
  if (message.includes(SIGNED_OUT)) return `${SIGN_IN}?next=${here()}`;
  if (message.includes(REVERIFY_NEEDED)) return `${REVERIFY}?next=${here()}`;
  return `#${field}`;
}

// GOV.UK's error summary moves focus to the field a link names and shows its label above it.
function followSummaryLinks(summary) {
  if (linkedSummaries.has(summary)) return;
  linkedSummaries.add(summary);
  summary.addEventListener('click', (event) => {
    const link = event.target.closest('a[href^="#"]');
    const target = link && document.getElementById(decodeURIComponent(link.getAttribute('href').slice(1)));
    if (!target || !target.matches('input, textarea, select, button')) return; // the browser's own jump
    event.preventDefault();
    const label = target.labels && target.labels[0];
    (label || target).scrollIntoView();
    target.focus({ preventScroll: true });
  });
}

function describedBy(control) {
  return (control.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
}

// The message at the field: the group's error border, the message after the label and hint, the
// control's error style, aria-invalid and aria-describedby. A field that is not a form control in a
// group (an id such as 'main-content') is named in the summary only. A button outside a form group
// may say where its group is with data-tac-error-group.
function markField(field, message) {
  const control = document.getElementById(field);
  if (!control || !control.matches('input, textarea, select, button')) return;
  const group = control.closest('.govuk-form-group') || control.closest('[data-tac-error-group]');
  if (!group) return;
  const error = document.createElement('p');
  error.id = `${field}-error`;
  error.className = 'govuk-error-message';
  const hidden = document.createElement('span');
  hidden.className = 'govuk-visually-hidden';
  hidden.textContent = 'Error:';
  error.append(hidden, ` ${message}`);
  let before = control;
  while (before.parentElement !== group) before = before.parentElement;
  group.insertBefore(error, before);
  group.classList.add('govuk-form-group--error');
  if (CONTROL_ERROR[control.tagName]) control.classList.add(CONTROL_ERROR[control.tagName]);
  if (control.tagName !== 'BUTTON') control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-describedby', [...describedBy(control), error.id].join(' '));
}

function unmarkField(control, errorId) {
  control.classList.remove(...Object.values(CONTROL_ERROR));
  control.removeAttribute('aria-invalid');
  const rest = describedBy(control).filter((id) => id !== errorId);
  if (rest.length) control.setAttribute('aria-describedby', rest.join(' '));
  else control.removeAttribute('aria-describedby');
}

// Show errors in the page's error summary and at their fields, and move focus to the summary, as
// GOV.UK's pattern asks. Errors shown before (by this script or the server's page) are replaced.
export function showErrors(errors) {
  clearErrors();
  const summary = document.querySelector('[data-tac-error-summary]');
  const list = summary.querySelector('[data-tac-error-list]');
  const marked = new Set();
  for (const { field, message } of errors) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = hrefFor(field, message);
    a.textContent = message;
    li.append(a);
    list.append(li);
    if (!marked.has(field)) { marked.add(field); markField(field, message); }
  }
  followSummaryLinks(summary);
  summary.hidden = false;
  if (!document.title.startsWith(TITLE_PREFIX)) document.title = `${TITLE_PREFIX}${document.title}`;
  summary.focus();
}

export function clearErrors() {
  const summary = document.querySelector('[data-tac-error-summary]');
  if (summary) {
    summary.hidden = true;
    summary.querySelector('[data-tac-error-list]')?.replaceChildren();
  }
  // The server's own summary (a sign-in refused, say) is out of date once the page checks again.
  for (const stale of document.querySelectorAll('.govuk-error-summary:not([data-tac-error-summary])')) {
    stale.hidden = true;
  }
  for (const error of document.querySelectorAll('.govuk-error-message[id$="-error"]')) {
    const control = document.getElementById(error.id.slice(0, -'-error'.length));
    if (control) unmarkField(control, error.id);
    error.remove();
  }
  for (const group of document.querySelectorAll('.govuk-form-group--error')) {
    group.classList.remove('govuk-form-group--error');
  }
  if (document.title.startsWith(TITLE_PREFIX)) document.title = document.title.slice(TITLE_PREFIX.length);
}

export function setBusy(button, busy, busyText) {
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = busyText;
    button.disabled = true;
    button.setAttribute('aria-disabled', 'true');
  } else {
    button.textContent = button.dataset.label || button.textContent;
    button.disabled = false;
    button.removeAttribute('aria-disabled');
  }
}

export const MIN_PASSWORD_LENGTH = 12;

// The password's strength is checked here: the only place that ever sees it.
export function passwordProblems(password, confirmation) {
  const problems = [];
  if (password.length < MIN_PASSWORD_LENGTH) {
    problems.push({ field: 'password', message: `Your password must be at least ${MIN_PASSWORD_LENGTH} characters` });
  }
  if (confirmation !== undefined && password !== confirmation) {
    problems.push({ field: 'password-confirm', message: 'The passwords do not match' });
  }
  return problems;
}
