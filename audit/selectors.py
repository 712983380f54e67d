"""Checking the audit chains (audit/README.md, "Checking"). One pass over the events in (chain, seq) order,
holding one small state per chain and nothing per row, so a database of millions of events is checked in
constant memory per chain."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
    anchors: int = 0  # chains with an anchored head checked against their rows
    problems: list[ChainProblem] = field(default_factory=list)


def _events(batch_size: int, *, site: AuditChain | None, of_site: bool) -> Iterator[AuditEvent]:
    """The site chain's events, or every other chain's, in (chain, seq) order."""
    rows = AuditEvent.objects.all()
    if site is not None:
        rows = rows.filter(chain=site) if of_site else rows.exclude(chain=site)
    elif of_site:
        rows = rows.none()
    return (rows.order_by("chain_id", "seq")
            .only("chain_id", "seq", "occurred_at", "kind", "actor_id", "actor_label", "ip", "target_type",
                  "target_id", "data", "prev_hash", "hash")
            .iterator(chunk_size=batch_size))


class _Walk:
    """One chain's check as its rows go past in order: gapless from 1, each linked to the one before (the
    first to the chain's genesis), each matching its hash, the row the site chain last anchored where
    it was, and the head matching the last row. Stops at the chain's first problem."""

    def __init__(self, chain: AuditChain, anchored: tuple[int, str] | None, report: VerifyReport):
        self.chain, self.anchored, self.report = chain, anchored, report
        self.seq, self.hash, self.failed = 0, genesis_hash(chain.name), False

    def fail(self, seq: int, reason: str) -> None:
        self.report.problems.append(ChainProblem(self.chain.name, seq, reason))
        self.failed = True

    def step(self, event: AuditEvent) -> None:
        self.report.rows += 1
        if self.failed:
            return
        expected = self.seq + 1
        if event.seq != expected:
            return self.fail(expected, f"row {expected} is missing (next row found is {event.seq})")
        if event.prev_hash != self.hash:
            return self.fail(event.seq, f"row {event.seq} does not link to row {event.seq - 1}")
        if event.compute_hash() != event.hash:
            return self.fail(event.seq, f"row {event.seq} was altered: its content does not match its hash")
        if self.anchored is not None and self.anchored[0] == event.seq and self.anchored[1] != event.hash:
            return self.fail(event.seq, f"row {event.seq} is not the row the site chain anchored: the chain was "
                                        f"rewritten from there")
        self.seq, self.hash = event.seq, event.hash

    def finish(self) -> None:
        if self.failed:
            return
        chain, seq = self.chain, self.seq
        if (chain.seq, chain.hash) != (seq, self.hash):
            if chain.seq == seq:
                return self.fail(seq, f"the chain's head does not match row {seq}: row {seq} was altered, or row "
                                      f"{seq + 1} onwards were deleted")
            return self.fail(seq + 1, f"rows after {seq} are missing (the head records {chain.seq})")
        if self.anchored is not None and self.anchored[0] > seq:
            self.fail(self.anchored[0], f"the site chain anchored row {self.anchored[0]}, which is missing: rows "
                                        f"were deleted after it was anchored")


def _walk(chains: dict[int, AuditChain], events: Iterable[AuditEvent], anchored: dict[str, tuple[int, str]],
          report: VerifyReport) -> set[int]:
    """Walks every chain the events belong to (in (chain, seq) order); returns the ids of those seen."""
    walk: _Walk | None = None
    seen: set[int] = set()
    for event in events:
        if walk is None or event.chain_id != walk.chain.pk:
            if walk is not None:
                walk.finish()
            chain = chains[event.chain_id]
            walk = _Walk(chain, anchored.get(chain.name), report)
            seen.add(chain.pk)
        walk.step(event)
    if walk is not None:
        walk.finish()
    return seen


def audit_verify(*, batch_size: int = 5000) -> VerifyReport:
    """Check the site chain, then every other chain against its rows and against the newest head the site
    chain anchored for it: a chain cut short or rewritten after it was anchored is caught even if its head
    row was rewritten to match. (An older anchor adds nothing the newest does not check: each row's hash
    covers every row before it.) One problem per chain at most, its first."""
    report = VerifyReport()
    chains = {c.pk: c for c in AuditChain.objects.all()}
    site = next((c for c in chains.values() if c.name == SITE), None)
    anchored: dict[str, tuple[int, str]] = {}
    if site is not None:
        def site_events() -> Iterator[AuditEvent]:
            for event in _events(batch_size, site=site, of_site=True):
                if event.kind == "audit.anchored":
                    for name, seq, hash_ in event.data.get("heads", []):
                        if seq > anchored.get(name, (0, ""))[0]:
                            anchored[name] = (seq, hash_)
                yield event

        _walk(chains, site_events(), {}, report)
    report.anchors = len(anchored)
    others = _walk(chains, _events(batch_size, site=site, of_site=False), anchored, report)
    for pk, chain in chains.items():
        if pk not in others and chain.name != SITE:
            empty = _Walk(chain, anchored.get(chain.name), report)
            empty.finish()
    report.chains = len(chains)
    return report
