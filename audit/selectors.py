from __future__ import annotations

from dataclasses import dataclass

from .models import GENESIS_HASH, AuditEvent, AuditHead


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


def audit_chain_verify(*, batch_size: int = 2000) -> ChainProblem | None:
    """Walk the whole chain in order; return the first problem, or None if every row checks out."""
    expected_seq, expected_prev = 1, GENESIS_HASH
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=batch_size):
        if event.seq != expected_seq:
            return ChainProblem(expected_seq, f"row {expected_seq} is missing (next row found is {event.seq})")
        if event.prev_hash != expected_prev:
            return ChainProblem(event.seq, f"row {event.seq} does not link to row {event.seq - 1}")
        if event.compute_hash() != event.hash:
            return ChainProblem(event.seq, f"row {event.seq} was altered: its content does not match its hash")
        expected_seq, expected_prev = event.seq + 1, event.hash
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None and (head.seq != expected_seq - 1 or head.hash != expected_prev):
        if head.seq == expected_seq - 1:
            return ChainProblem(
                head.seq,
                f"the chain's head does not match row {head.seq}: row {head.seq} was altered, "
                f"or row {head.seq + 1} onwards were deleted",
            )
        return ChainProblem(expected_seq, f"rows after {expected_seq - 1} are missing (the head records {head.seq})")
    return None
