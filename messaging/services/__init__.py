"""Every state change of workspaces, membership, key epochs and posts, a module per entity (messaging/README.md,
"Code"). Each runs in one transaction, checks access.py against current membership, writes its audit
event, and sends its events after commit.

The server cannot read anything it checks here: it verifies signatures, manifests and the shape of
sealed boxes, never their content (docs/crypto.md). Callers use the names below (`services.post_create`);
the modules are where each lives."""

from ..custodian import Conflict, custodian_key_current
from .client_state import MAX_STATE_BYTES, client_state_save
from .continuity import lead_appointment_install, lead_appointment_request
from .epochs import epoch_rotate
from .keys import history_share, key_confirm, member_rekey
from .memberships import (
    membership_invite,
    membership_leave,
    membership_respond,
    memberships_end_for_offboarding,
)
from .posts import PostResult, post_create
from .read_positions import read_position_update
from .workspaces import workspace_close, workspace_create

__all__ = [
    "MAX_STATE_BYTES", "Conflict", "PostResult", "client_state_save", "custodian_key_current", "epoch_rotate",
    "history_share", "key_confirm", "lead_appointment_install", "lead_appointment_request", "member_rekey", "membership_invite", "membership_leave", "membership_respond",
    "memberships_end_for_offboarding", "post_create", "read_position_update", "workspace_close", "workspace_create",
]
