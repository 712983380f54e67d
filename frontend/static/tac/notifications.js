// The unread badge in the service navigation (base.html renders it with the server's count), kept current
// over the page's one websocket: the server sends the recipient's sockets `notification.created` and
// `notifications.read`, each with only the new count (never what a notification is about).
const EVENTS = ['notification.created', 'notifications.read'];

export function showUnread(count) {
  const badge = document.querySelector('[data-tac-unread]');
  if (!badge || !Number.isSafeInteger(count) || count < 0) return;
  badge.querySelector('[data-tac-unread-count]').textContent = String(count);
  badge.hidden = count === 0;
}

// `live` is the page's Live (live.js), which dispatches each frame it does not handle itself by its type.
export function followUnread(live) {
  for (const type of EVENTS) live.addEventListener(type, ({ detail }) => showUnread(detail.unread));
}
