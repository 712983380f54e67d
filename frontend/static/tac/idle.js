// WCAG 2.2.1 (timing adjustable): warn before the session ends while idle, offer to stay signed in, and
// say so when it has ended. Loaded by base.html on signed-in pages only, with the dialogs of
// includes/idle_dialogs.html.
//
// The server's clock is the one that counts: every request restarts the session's idle limit, from any
// tab of the session (and posts and reads over the websocket do too). So before warning, and while the
// warning is open, this tab asks GET /accounts/api/v1/session how long is left (an answer that does not
// itself restart the clock), and carries on quietly if another tab has been in use meanwhile.
import { postJSON, sessionStatus } from './api.js';
import { forget } from './keystore.js';

const KEEP_ALIVE_URL = '/accounts/api/v1/session/keep-alive';

const body = document.body;
const limit = Number(body.dataset.tacIdleSeconds);
const warning = document.querySelector('dialog[data-tac-idle="warning"]');
const ended = document.querySelector('dialog[data-tac-idle="ended"]');

// Two minutes' warning, or half the limit when that is shorter (a session shortened for a test). WCAG asks
// for at least 20 seconds to respond.
const WARN_SECONDS = Math.min(120, limit / 2);
// A session that has this much more than the warning time left is warned now, not re-armed for a moment.
const SLACK_SECONDS = 1;
// While the warning is open, how often to ask whether another tab has kept the session.
const POLL_MS = Math.min(15000, (WARN_SECONDS * 1000) / 4);

let state = body.dataset.tacSession || 'active';
let deadline = Date.now() + limit * 1000; // when the server ends the session, by this tab's clock
let timer = null;
let ticker = null;
let checking = null;
let staying = false;
let returnFocus = null;
let announced = null;

function setState(next) {
  state = next;
  body.dataset.tacSession = next;
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(check, Math.max(0, ms));
}

function secondsLeft() {
  return Math.max(0, (deadline - Date.now()) / 1000);
}

function plural(n, unit) {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

function duration(seconds) {
  return seconds >= 60 ? plural(Math.ceil(seconds / 60), 'minute') : plural(Math.ceil(seconds), 'second');
}

// Whole minutes, then 30 and 10 seconds: what a screen reader hears, without a voice every second.
function milestone(seconds) {
  if (seconds > 60) return duration(seconds);
  if (seconds > 30) return duration(60);
  if (seconds > 10) return duration(30);
  return duration(10);
}

function check() {
  if (!checking) checking = look().finally(() => { checking = null; });
  return checking;
}

async function look() {
  if (state === 'ended') return;
  const answer = await sessionStatus();
  if (state === 'ended') return;
  if (answer && answer.ended) {
    end(Date.now() >= deadline - SLACK_SECONDS * 1000 ? 'inactive' : 'signed-out');
    return;
  }
  if (answer) deadline = Date.now() + answer.secondsLeft * 1000;
  const left = secondsLeft();
  // Unanswered at the deadline: the server has ended the session by now, unless another tab reached it.
  if (left <= 0) {
    end('inactive');
    return;
  }
  if (left > WARN_SECONDS + SLACK_SECONDS) {
    if (state === 'warning') closeWarning();
    schedule((left - WARN_SECONDS) * 1000);
    return;
  }
  if (state !== 'warning') openWarning();
  // Just after the deadline the server answers that the session has ended.
  schedule(Math.min(POLL_MS, left * 1000 + 250));
}

function tick() {
  const left = secondsLeft();
  warning.querySelector('[data-tac-idle-countdown]').textContent = duration(left);
  const step = milestone(left);
  if (announced !== null && step !== announced) {
    warning.querySelector('[data-tac-idle-announce]').textContent = `We will sign you out in ${step}.`;
  }
  announced = step;
}

function showError(message) {
  const error = warning.querySelector('[data-tac-idle-error]');
  error.replaceChildren();
  const hidden = document.createElement('span');
  hidden.className = 'govuk-visually-hidden';
  hidden.textContent = 'Error: ';
  error.append(hidden, message);
  error.hidden = !message;
}

function openWarning() {
  setState('warning');
  returnFocus = document.activeElement;
  announced = null;
  warning.querySelector('[data-tac-idle-announce]').textContent = '';
  showError('');
  tick();
  ticker = setInterval(tick, 1000);
  if (!warning.open) warning.showModal();
  warning.querySelector('[data-tac-idle-stay]').focus();
}

function closeWarning() {
  clearInterval(ticker);
  setState('active');
  if (warning.open) warning.close();
  if (returnFocus && returnFocus.isConnected && returnFocus !== document.body) returnFocus.focus({ preventScroll: true });
  returnFocus = null;
}

async function stay() {
  if (staying || state !== 'warning') return;
  staying = true;
  try {
    const answer = await postJSON(KEEP_ALIVE_URL, {});
    if (state === 'ended') return;
    deadline = Date.now() + answer.seconds_left * 1000;
    closeWarning();
    schedule((secondsLeft() - WARN_SECONDS) * 1000);
  } catch (error) {
    if (error.status === 401 || error.code === '2fa_required') {
      end('inactive');
    } else {
      showError('We could not reach the service to keep you signed in. Check your connection and try again.');
    }
  } finally {
    staying = false;
  }
}

function end(reason) {
  clearTimeout(timer);
  clearInterval(ticker);
  setState('ended');
  forget(); // the keys go with the session: whoever sits down at this tab next must sign in again
  if (warning.open) warning.close();
  ended.querySelector('[data-tac-idle-reason]').textContent = reason === 'inactive'
    ? `You have been signed out because you were inactive for ${duration(limit)}.`
    : 'Your session has ended. You may have signed out in another tab or window, or on another device.';
  if (!ended.open) ended.showModal();
  ended.querySelector('a').focus();
  document.dispatchEvent(new CustomEvent('tac:session-ended', { detail: { reason } }));
}

if (warning && ended && Number.isFinite(limit) && limit > 0) {
  warning.querySelector('[data-tac-idle-stay]').addEventListener('click', stay);
  // Escape means "stay signed in", as the button does.
  warning.addEventListener('cancel', (event) => {
    event.preventDefault();
    stay();
  });
  // Nothing behind the notice works any more; only signing in again does.
  ended.addEventListener('cancel', (event) => event.preventDefault());
  ended.addEventListener('close', () => { if (state === 'ended') ended.showModal(); });
  // Background tabs' timers are slowed down by the browser: look again when the tab is seen.
  document.addEventListener('visibilitychange', () => { if (!document.hidden) check(); });
  window.addEventListener('pageshow', (event) => { if (event.persisted) check(); });
  schedule((limit - WARN_SECONDS) * 1000);
}
