"""Constants of the wire both sides hold to: what a client may write, and what the server bounds. One
list each; the browser's copies are in frontend/static/tac/workspace.js and compose.js, which
tests/test_protocol_package.py compares with these.

Sizes are in docs/protocol.md, "Limits"."""

from __future__ import annotations

RAGS = ("red", "amber", "green")

# Concern categories (the encrypted body's `category`): the one list, which the browser's composer also
# offers (frontend/views.py hands it to the template).
CONCERN_CATEGORIES = {
    "physical_abuse": "Physical abuse", "emotional_abuse": "Emotional abuse", "sexual_abuse": "Sexual abuse",
    "neglect": "Neglect", "domestic_abuse": "Domestic abuse", "exploitation": "Exploitation",
    "mental_health": "Mental health", "school_attendance": "School attendance", "housing": "Housing",
    "other": "Other",
}

# The child's details post (kind "details"): keys the browser writes, with the labels it shows.
DETAILS_FIELDS = {"name": "Name", "dob": "Date of birth", "nhs_number": "NHS number", "address": "Address",
                  "family": "Family and household", "notes": "Notes"}

# Free text in a post's encrypted body (a concern's detail, an update, a note): what clients allow, since
# only they can see it. The server bounds the ciphertext instead.
MAX_TEXT_CHARS = 20_000
MAX_CIPHERTEXT_BYTES = 256 * 1024
# Members one epoch's manifest may name.
MAX_MEMBERS = 2000

# An epoch key is replaced after this many posts or this long (the server insists; clients rotate).
EPOCH_MAX_POSTS = 500
EPOCH_MAX_AGE_MS = 30 * 24 * 3600 * 1000
# How far a post's signed time may be from the server's clock when stored (the server refuses more), and
# from the time the server says it stored it (readers mark more).
CLOCK_SKEW_MS = 10 * 60 * 1000
# An action's title (in the encrypted body), and how far ahead its due date (metadata) may be.
MAX_TITLE_CHARS = 200
MAX_DUE_YEARS = 2

# Kinds of post. Content is what a professional writes (it has no target, or replies to one); an event is
# about another post and must name it; edits and retractions change only what a professional wrote.
CONTENT_KINDS = frozenset({"concern", "action", "update", "decision", "details", "history_shared"})
EVENT_KINDS = frozenset({"action_status", "acknowledgement", "edit", "retraction", "rating_change"})
CHANGEABLE_KINDS = frozenset({"concern", "action", "update", "decision", "details"})
# Ratings from none to the most serious: a workspace shows its highest current one.
RAG_ORDER = {"": 0, "green": 1, "amber": 2, "red": 3}
