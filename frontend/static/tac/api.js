// JSON requests to the server with Django's CSRF token, and error display in GOV.UK's error summary.

function csrfToken() {
  const input = document.querySelector('input[name=csrfmiddlewaretoken]');
  return input ? input.value : '';
}

export async function postJSON(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken(), Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const reason = (data && data.reason) || `The server answered ${response.status}. Try again.`;
    const error = new Error(reason);
    error.status = response.status;
    error.code = (data && data.error) || null;
    throw error;
  }
  return data;
}

export async function getJSON(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`The server answered ${response.status}.`);
  return response.json();
}

// Show errors in the page's error summary and move focus there, as GOV.UK's pattern asks.
export function showErrors(errors) {
  const summary = document.querySelector('[data-tac-error-summary]');
  const list = summary.querySelector('[data-tac-error-list]');
  list.replaceChildren();
  for (const { field, message } of errors) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `#${field}`;
    a.textContent = message;
    li.append(a);
    list.append(li);
  }
  summary.hidden = false;
  summary.focus();
}

export function clearErrors() {
  const summary = document.querySelector('[data-tac-error-summary]');
  if (summary) summary.hidden = true;
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
