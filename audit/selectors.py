from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .models import SITE, AuditChain, AuditEvent, genesis_hash


@dataclass(frozen=True)
class ChainProblem:
    chain: str
    seq: int
    reason: str


@dataclass
class VerifyReport:
    chains: int = 0
    rows: int = 0
    anchors: int = 0
    problems: list[ChainProblem] = field(default_factory=list)


def _events_by_chain(batch_size: int) -> Iterator[AuditEvent]:
    return (AuditEvent.objects.order_by("chain_id", "seq")
            .only("chain_id", "seq", "occurred_at", "kind", "actor_id", "actor_label", "ip", "target_type",
                  "target_id", "data", "prev_hash", "hash")
            .iterator(chunk_size=batch_size))


def _check_rows(name: str, events: list[AuditEvent] | Iterator[AuditEvent], report: VerifyReport,
                claims: dict[tuple[str, int], str]) -> tuple[int, str] | None:
    """Walks one chain's rows in order; returns (last seq, last hash), or None after its first problem
    (which it adds to the report)."""
    expected_seq, expected_prev = 1, genesis_hash(name)
    for event in events:
        report.rows += 1
        if event.seq != expected_seq:
            report.problems.append(ChainProblem(name, expected_seq,
                                                f"row {expected_seq} is missing (next row found is {event.seq})"))
            return None
        if event.prev_hash != expected_prev:
            report.problems.append(ChainProblem(name, event.seq, f"row {event.seq} does not link to row {event.seq - 1}"))
            return None
        if event.compute_hash() != event.hash:
            report.problems.append(ChainProblem(name, event.seq,
                                                f"row {event.seq} was altered: its content does not match its hash"))
            return None
        anchored = claims.pop((name, event.seq), None)
        if anchored is not None and anchored != event.hash:
            report.problems.append(ChainProblem(name, event.seq, f"row {event.seq} is not the row the site chain "
                                                                 f"anchored: the chain was rewritten from there"))
            return None
        expected_seq, expected_prev = event.seq + 1, event.hash
    return expected_seq - 1, expected_prev


def _check_head(chain: AuditChain, last: tuple[int, str], report: VerifyReport) -> None:
    seq, hash_ = last
    if (chain.seq, chain.hash) == (seq, hash_):
        return
    if chain.seq == seq:
        report.problems.append(ChainProblem(chain.name, seq, f"the chain's head does not match row {seq}: row {seq} "
                                                            f"was altered, or row {seq + 1} onwards were deleted"))
    else:
        report.problems.append(ChainProblem(chain.name, seq + 1,
                                            f"rows after {seq} are missing (the head records {chain.seq})"))


def audit_verify(*, batch_size: int = 5000) -> VerifyReport:
    """Check every chain and every anchor. Each chain: rows numbered from 1 without a gap, each linked to
    the one before (the first to the chain's genesis), each matching its hash, and the head matching the
    last row. The site chain first, which must itself verify: each [chain, seq, hash] its
    `audit.anchored` rows name must be that chain's row at seq, so a chain cut short or rewritten after
    it was anchored is caught even if its head row was rewritten to match. One problem per chain at most
    (the first); the report counts rows, chains and anchors checked."""
    report = VerifyReport()
    chains = {c.pk: c for c in AuditChain.objects.all()}
    by_name = {c.name: c for c in chains.values()}
    claims: dict[tuple[str, int], str] = {}
    site = by_name.get(SITE)
    if site is not None:
        site_events = list(AuditEvent.objects.filter(chain=site).order_by("seq"))
        last = _check_rows(SITE, site_events, report, {})
        if last is not None:
            _check_head(site, last, report)
        for event in site_events:
            if event.kind == "audit.anchored":
                for name, seq, hash_ in event.data.get("heads", []):
                    claims[(name, seq)] = hash_
        report.anchors = len(claims)
    current: list[AuditEvent] = []
    current_chain: int | None = None

    def finish() -> None:
        if current_chain is None or chains[current_chain].name == SITE:
            return
        chain = chains[current_chain]
        last = _check_rows(chain.name, current, report, claims)
        if last is not None:
            _check_head(chain, last, report)

    seen: set[int] = set()
    for event in _events_by_chain(batch_size):
        if event.chain_id != current_chain:
            finish()
            current, current_chain = [], event.chain_id
            seen.add(event.chain_id)
        current.append(event)
    finish()
    for pk, chain in chains.items():
        if pk not in seen and chain.name != SITE:
            _check_head(chain, (0, genesis_hash(chain.name)), report)
    # Anchors naming rows that no chain holds: the chain (or its tail) was deleted after it was anchored.
    failed = {p.chain for p in report.problems}
    for (name, seq), _hash in sorted(claims.items()):
        if name not in failed:
            report.problems.append(ChainProblem(name, seq, f"the site chain anchored row {seq}, which is missing: "
                                                          f"rows were deleted after it was anchored"))
            failed.add(name)
    report.chains = len(chains)
    return report
