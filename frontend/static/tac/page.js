// Loaded by every page (base.html).
import { initAll } from '/static/vendor/govuk-frontend/govuk-frontend.min.js';

// GOV.UK Frontend's components (error summary focus, navigation toggle, skip link) start only when the
// body says JavaScript is available; its own template does that inline, which our CSP forbids.
document.body.classList.add('govuk-frontend-supported', 'js-enabled');
initAll();

// Signing out drops this tab's wrapping key (keystore.js) before the request leaves.
for (const form of document.querySelectorAll('form[data-tac-sign-out]')) {
  form.addEventListener('submit', () => sessionStorage.removeItem('tac.wrapKey'));
}
