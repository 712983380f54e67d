"""Every read behind the managers' dashboards (oversight/README.md, "Dashboards").

Metadata only: the summary rows services.post_create keeps in each post's transaction (ActionSummary,
ConcernSummary, ConcernAcknowledgement) with Workspace, Membership, Professional and Agency. Nothing here
reads a post, so nothing here can show what anyone wrote (the server cannot read it either) and no query
grows with the number of posts. Each function takes the viewer and narrows to what access.py lets them
oversee; each page is a handful of grouped queries (values().annotate() with Count(filter=...)), never a
query per row.

"Overdue" is tacprotocol/actions.py's rule, in SQL: still the owner's to do (open, accepted, reopened) and
its due date, a day in the site's time zone, before today. "Completed" is done or confirmed; "by the due
date" is done on or before the due date, as a day in the site's time zone."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import (
    Aggregate,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Agency, Professional
from messaging.models import ActionSummary, ConcernAcknowledgement, ConcernSummary, Membership, Workspace
from tacprotocol import actions
from tacprotocol.wire import RAGS

from . import access

COMPLETED = ("done", "confirmed")
# The dashboard's "Action status" filter.
ACTION_STATUSES = {
    "open": "Open (not done yet, overdue included)",
    "overdue": "Overdue",
    "completed": "Completed",
    "cancelled": "Cancelled",
}
WEEKS = 12
# The owners table shows this many (most overdue first); the CSV has every action.
OWNER_ROWS = 100
WORKSPACES_PER_PAGE = 50


@dataclass(frozen=True)
class Filters:
    """What the dashboard's form narrows to. `agency_id`: actions owned by, concerns raised by and
    acknowledgements made by that agency's staff (and, in the workspace list, workspaces it takes part
    in). `lead_id`: workspaces this professional leads. `date_from`/`date_to` (inclusive days): actions
    created and concerns raised between them. `workspace_status`: a Workspace.Status. `action_status`:
    a key of ACTION_STATUSES."""

    agency_id: int | None = None
    lead_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    workspace_status: str = ""
    action_status: str = ""


NO_FILTERS = Filters()


class Median(Aggregate):
    """PostgreSQL's median; other databases (make run's SQLite) take the Python fallback below."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _ends(day: dt.date | None) -> bool:
    """Whether an inclusive end day bounds anything: 9999-12-31, the last day a date can name, does not
    (and has no next day: as a filter it was a 500, found by tests/oversight/test_properties.py)."""
    return day is not None and day < dt.date.max


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _pending() -> Q:
    return Q(status__in=actions.PENDING)


def _completed() -> Q:
    return Q(status__in=COMPLETED)


def _overdue(today: dt.date) -> Q:
    """tacprotocol.actions.overdue as SQL terms (tests/oversight/test_dashboard.py checks they agree)."""
    return _pending() & Q(due_date__lt=today)


def _on_time() -> Q:
    """Done on or before its due date, a day in the site's time zone: before the start of the next day,
    which is the moment the action would have become overdue, kept as breach_at with the due date
    (oversight/clocks.py). Comparing two stored instants, rather than converting done_at to a local date
    in every row, is what keeps the aggregates cheap; a test checks the two readings agree."""
    return _completed() & Q(due_date__isnull=False, done_at__lt=F("breach_at"))


def _status_terms(status: str, today: dt.date) -> Q:
    return {"open": _pending, "overdue": lambda: _overdue(today), "completed": _completed,
            "cancelled": lambda: Q(status="cancelled")}[status]()


def _still_member() -> Exists:
    """For an ActionSummary: is its owner still an active member of its workspace (and not offboarded)?"""
    return Exists(Membership.objects.filter(workspace_id=OuterRef("workspace_id"), professional_id=OuterRef("owner_id"),
                                            state=Membership.State.ACTIVE, professional__is_active=True))


ENDED = (Membership.State.LEFT, Membership.State.REMOVED)


def _unowned(ids: QuerySet | None, terms: Q, filters: Filters) -> dict[tuple[int, int], int]:
    """{(owner's agency, owner): actions} still to do whose owner is no longer an active member of the
    workspace. An owner was an active member when given the action (post_create insists) and membership
    rows are never deleted, so such an owner has a left or removed row in that workspace, or has been
    offboarded. Those rows are few: this finds the ones with actions still to do (the one query that
    needs the viewer's scope), drops the people who are active members there again, and counts."""
    if filters.action_status in ("completed", "cancelled"):
        return {}
    pending = ActionSummary.objects.filter(terms, _pending(), retracted=False).order_by()
    offboarded = Professional.objects.filter(is_active=False).values("pk")
    gone = Membership.objects.filter(Q(state__in=ENDED) | Q(professional_id__in=offboarded)).filter(
        Exists(pending.filter(workspace_id=OuterRef("workspace_id"), owner_id=OuterRef("professional_id"))))
    if ids is not None:
        gone = gone.filter(workspace_id__in=ids)
    pairs = set(gone.order_by().values_list("workspace_id", "professional_id"))
    if not pairs:
        return {}
    workspaces, people = {w for w, _ in pairs}, {p for _, p in pairs}
    pairs -= set(Membership.objects.filter(workspace_id__in=workspaces, professional_id__in=people,
                                           state=Membership.State.ACTIVE, professional__is_active=True)
                 .values_list("workspace_id", "professional_id"))
    unowned: dict[tuple[int, int], int] = defaultdict(int)
    if pairs:
        for workspace_id, agency_id, owner_id, n in (
                pending.filter(workspace_id__in={w for w, _ in pairs}, owner_id__in={p for _, p in pairs})
                .values_list("workspace_id", "owner_agency_id", "owner_id").annotate(n=Count("pk"))):
            if (workspace_id, owner_id) in pairs:
                unowned[(agency_id, owner_id)] += n
    return unowned


def _workspace_ids(viewer: Professional, filters: Filters, *, agency_takes_part: bool = False) -> QuerySet | None:
    """Ids of the workspaces the viewer oversees that pass the workspace filters, as a subquery; None when
    that is every workspace (a partnership lead, unfiltered), so the summaries are read without one."""
    terms = Q()
    scope = access.workspace_scope(viewer)
    if scope is not None:
        terms &= scope
    if filters.lead_id:
        terms &= Q(lead_id=filters.lead_id)
    if filters.workspace_status:
        terms &= Q(status=filters.workspace_status)
    if agency_takes_part and filters.agency_id:
        terms &= access.agency_takes_part(filters.agency_id)
    return Workspace.objects.filter(terms).order_by().values("pk") if terms else None


def _action_terms(filters: Filters, today: dt.date, *, dated: bool = True, status: bool = True) -> Q:
    """The filters' terms on an action's own columns; `dated` and `status` say whether the date range and
    the action status filter apply (the trends take neither)."""
    terms = Q()
    if filters.agency_id:
        terms &= Q(owner_agency_id=filters.agency_id)
    if dated and filters.date_from:
        terms &= Q(created_at__gte=_start_of(filters.date_from))
    if dated and _ends(filters.date_to):
        terms &= Q(created_at__lt=_start_of(filters.date_to + dt.timedelta(days=1)))
    if status and filters.action_status:
        terms &= _status_terms(filters.action_status, today)
    return terms


def _actions(ids: QuerySet | None, terms: Q) -> QuerySet:
    """The actions (not retracted) in the workspaces `ids` (None: all) that pass `terms`."""
    rows = ActionSummary.objects.filter(terms, retracted=False).order_by()
    return rows if ids is None else rows.filter(workspace_id__in=ids)


def _concerns(ids: QuerySet | None, filters: Filters, *, dated: bool = True) -> QuerySet:
    """The concerns (not retracted) in the workspaces `ids` (None: all) that pass the filters."""
    rows = ConcernSummary.objects.filter(retracted=False).order_by()
    if ids is not None:
        rows = rows.filter(workspace_id__in=ids)
    if filters.agency_id:
        rows = rows.filter(author_agency_id=filters.agency_id)
    if dated and filters.date_from:
        rows = rows.filter(raised_at__gte=_start_of(filters.date_from))
    if dated and _ends(filters.date_to):
        rows = rows.filter(raised_at__lt=_start_of(filters.date_to + dt.timedelta(days=1)))
    return rows


def _action_counts(today: dt.date) -> dict[str, Count]:
    dated = _completed() & Q(due_date__isnull=False)
    return {
        "total": Count("pk"),
        "open": Count("pk", filter=_pending()),
        "overdue": Count("pk", filter=_overdue(today)),
        "completed": Count("pk", filter=_completed()),
        "completed_dated": Count("pk", filter=dated),
        "on_time": Count("pk", filter=_on_time()),
        "cancelled": Count("pk", filter=Q(status="cancelled")),
    }


ACTION_FIGURES = ("total", "open", "overdue", "completed", "completed_dated", "on_time", "cancelled", "unowned")


def _share(figures: dict) -> dict:
    """Adds `on_time_share`: the share of completed actions with a due date done by it (None if none)."""
    figures["on_time_share"] = (figures["on_time"] / figures["completed_dated"]) if figures["completed_dated"] else None
    return figures


def _concern_counts() -> dict:
    return {
        "total": Count("pk"),
        # The lead answered (or raised it: the lead's own concern needs no answer from them).
        "answered": Count("pk", filter=Q(responded_at__isnull=False)),
        "waiting": Count("pk", filter=Q(responded_at__isnull=True, breached_at__isnull=True)),
        # Unanswered, and its response clock has run out.
        "late": Count("pk", filter=Q(responded_at__isnull=True, breached_at__isnull=False)),
        "breached": Count("pk", filter=Q(breach_count__gt=0)),
        "breaches": Coalesce(Sum("breach_count"), 0),
    }


CONCERN_FIGURES = ("total", "answered", "waiting", "late", "breached", "breaches")


def _red_acknowledgement_medians(ids: QuerySet | None, filters: Filters) -> list[dict]:
    """Per acknowledging agency (by id; the caller names them): how many red concerns it acknowledged,
    and the median time from the concern being raised to the agency's first acknowledgement. Concerns in
    the date range, if any."""
    # The concern's own columns only as a semi-join when a filter needs them, and retracted concerns (few)
    # left out by a small anti-join: the red acknowledgements are then read from an index alone.
    retracted = ConcernSummary.objects.filter(retracted=True).values("pk")
    acks = ConcernAcknowledgement.objects.filter(rag="red").exclude(concern_id__in=retracted).order_by()
    concerns = Q()
    if ids is not None:
        concerns &= Q(workspace_id__in=ids)
    if filters.date_from:
        concerns &= Q(raised_at__gte=_start_of(filters.date_from))
    if _ends(filters.date_to):
        concerns &= Q(raised_at__lt=_start_of(filters.date_to + dt.timedelta(days=1)))
    if concerns:
        acks = acks.filter(concern_id__in=ConcernSummary.objects.filter(concerns).values("pk"))
    if filters.agency_id:
        acks = acks.filter(agency_id=filters.agency_id)
    if connections[acks.db].vendor == "postgresql":
        # Grouped by the agency's id alone, in the index's order (no sort); the names come after.
        rows = [{"agency_id": r["agency_id"], "count": r["count"], "median_seconds": r["median"]}
                for r in acks.values("agency_id").annotate(count=Count("concern_id"), median=Median("seconds"))]
    else:
        rows = _medians_in_python(acks.values_list("agency_id", "seconds"))
    return rows


def _medians_in_python(values) -> list[dict]:
    """The same figures as percentile_cont(0.5), for SQLite (make run's quick start), which has no
    ordered-set aggregates: it reads one row per acknowledgement, so it is for small databases only."""
    seconds: dict[int, list[int]] = defaultdict(list)
    for agency_id, value in values:
        seconds[agency_id].append(value)
    return [{"agency_id": agency_id, "count": len(values), "median_seconds": float(statistics.median(values))}
            for agency_id, values in seconds.items()]


def dashboard(*, viewer: Professional, filters: Filters = NO_FILTERS) -> dict:
    """Everything the dashboard page shows but the trends: action figures in total, by agency and by
    owner; concerns by current rating and their clock breaches; each agency's median time to acknowledge
    red concerns. Six to eight queries, none of them per row."""
    today = timezone.localdate()
    ids = _workspace_ids(viewer, filters)
    terms = _action_terms(filters, today)
    grouped = list(_actions(ids, terms).values("owner_agency_id", "owner_id").annotate(**_action_counts(today)))
    unowned = _unowned(ids, terms, filters)

    agencies: dict[int, dict] = {}
    owners = []
    for r in grouped:
        figures = {name: r.get(name, 0) for name in ACTION_FIGURES}
        figures["unowned"] = unowned.get((r["owner_agency_id"], r["owner_id"]), 0)
        owners.append(_share({"owner_id": r["owner_id"], "agency_id": r["owner_agency_id"], **figures}))
        agency = agencies.setdefault(r["owner_agency_id"], {"agency_id": r["owner_agency_id"],
                                                            **dict.fromkeys(ACTION_FIGURES, 0)})
        for name in ACTION_FIGURES:
            agency[name] += figures[name]
    medians = _red_acknowledgement_medians(ids, filters)
    # Names afterwards, for the rows shown: grouping by ids alone keeps the aggregates cheap.
    names = dict(Agency.objects.filter(pk__in={*agencies, *(m["agency_id"] for m in medians)})
                 .values_list("pk", "name"))
    for median in medians:
        median["agency"] = names[median["agency_id"]]
    for agency in agencies.values():
        agency["agency"] = names[agency["agency_id"]]
    by_agency = sorted((_share(a) for a in agencies.values()), key=lambda a: a["agency"])
    totals = _share({name: sum(a[name] for a in by_agency) for name in ACTION_FIGURES})
    # The owners most behind first; the table shows the first OWNER_ROWS of them, named.
    owners.sort(key=lambda o: (-o["overdue"], -o["unowned"], -o["open"], o["owner_id"]))
    shown = owners[:OWNER_ROWS]
    people = {p.pk: p for p in Professional.objects.filter(pk__in=[o["owner_id"] for o in shown])
              .only("full_name", "is_active")}
    for owner in shown:
        person = people[owner["owner_id"]]
        owner.update(owner=person.full_name, owner_active=person.is_active, agency=names[owner["agency_id"]])
    shown.sort(key=lambda o: (-o["overdue"], -o["unowned"], -o["open"], o["owner"]))

    by_rating = {r["rag"]: r for r in _concerns(ids, filters)
                 .values("rag").annotate(**_concern_counts())}
    concerns = [{"rag": rag, **{name: by_rating.get(rag, {}).get(name, 0) for name in CONCERN_FIGURES}}
                for rag in RAGS]
    return {
        "today": today,
        "actions": totals,
        "by_agency": by_agency,
        "by_owner": shown,
        "owners_total": len(owners),
        "concerns": concerns,
        "concern_totals": {name: sum(c[name] for c in concerns) for name in CONCERN_FIGURES},
        "red_acknowledgements": sorted(medians, key=lambda m: m["agency"]),
    }


def week_starts(today: dt.date, weeks: int = WEEKS) -> list[dt.date]:
    """The Mondays of the last `weeks` ISO weeks, the current one last."""
    monday = today - dt.timedelta(days=today.weekday())
    return [monday - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def _week_of(field: str, first: dt.datetime, ends: list[dt.datetime], only: Q | None = None) -> Case:
    """Which week (0 for the first) a row's `field` falls in, or None (before the first week, not set, or
    not `only`): plain comparisons of stored instants, so no row's time is converted to the local time
    zone (which would cost more than the rest of the query together)."""
    before = Q(**{f"{field}__lt": first}) | Q(**{f"{field}__isnull": True})
    if only is not None:
        before |= ~only
    return Case(When(before, then=Value(None)), *[When(Q(**{f"{field}__lt": end}), then=Value(i))
                                                  for i, end in enumerate(ends)],
                default=Value(None), output_field=IntegerField())


def trends(*, viewer: Professional, filters: Filters = NO_FILTERS, weeks: int = WEEKS) -> dict:
    """Per ISO week (Monday to Sunday, in the site's time zone) for the last `weeks` weeks: actions
    created, completed, completed by their due date, and overdue at the week's end (the start of the next
    Monday; for this week, now); concerns now rated red by the week raised; concerns whose response clock
    ran out that week. The agency, lead and workspace status filters apply; the date range and action
    status do not. Three grouped queries, each reading only the rows that can count.

    "Overdue at the week's end" is rebuilt from the summary's columns: due before that day, and then not
    yet done (done_at later), not yet cancelled (its last change later), or still to do now. An action
    done and then reopened counts as still to do throughout, because its summary keeps only the latest
    completion; and "response clocks run out" counts each concern's latest breach only."""
    now = timezone.now()
    today = timezone.localdate(now)
    starts = week_starts(today, weeks)
    first = _start_of(starts[0])
    ends = [_start_of(day + dt.timedelta(days=7)) for day in starts]
    figures = {key: [0] * weeks for key in ("created", "completed", "on_time", "overdue", "red_raised", "breaches")}
    ids = _workspace_ids(viewer, filters)
    rows = _actions(ids, _action_terms(filters, today, dated=False, status=False))

    # Created, and completed (by the due date or not), by week: one pass over the rows of these weeks.
    for row in (rows.filter(Q(created_at__gte=first) | (_completed() & Q(done_at__gte=first)))
                .annotate(created=_week_of("created_at", first, ends),
                          completed=_week_of("done_at", first, ends, only=_completed()))
                .values("created", "completed").annotate(n=Count("pk"), on_time=Count("pk", filter=_on_time()))):
        if row["created"] is not None:
            figures["created"][row["created"]] += row["n"]
        if row["completed"] is not None:
            figures["completed"][row["completed"]] += row["n"]
            figures["on_time"][row["completed"]] += row["on_time"]

    # Overdue at the end of week i: due before days[i] (the next Monday; for this week, today) and not yet
    # done or cancelled then. Read: what is overdue now, and what was done or cancelled late in these
    # weeks (done or cancelled by its due date, an action was never overdue). Due dates before the first
    # week's end count alike, so they are grouped as one.
    days = [*starts[1:], today]
    since = _start_of(days[0])
    # When a done or cancelled action stopped being the owner's to do: done_at if done (cancelling is
    # only from open, accepted or reopened, and reopening clears done_at), else its last change.
    ended = Case(When(_pending(), then=Value(None)),
                 *[When(Q(ended_at__lt=end), then=Value(i)) for i, end in enumerate(ends)],
                 default=Value(None), output_field=IntegerField())
    late = (rows.filter(due_date__lt=today)
            .filter(_pending() | (_completed() & Q(done_at__gte=since) & Q(done_at__gte=F("breach_at")))
                    | (Q(status="cancelled", updated_at__gte=since) & Q(updated_at__gte=F("breach_at"))))
            .annotate(ended_at=Coalesce("done_at", "updated_at"))
            .annotate(due=Greatest("due_date", Value(days[0] - dt.timedelta(days=1))), ended=ended)
            .values("due", "ended").annotate(n=Count("pk")))
    for row in late:
        # Done or cancelled in week j: still undone at the end of each week before j; never, at every end.
        for i in range(weeks if row["ended"] is None else row["ended"]):
            if row["due"] < days[i]:
                figures["overdue"][i] += row["n"]

    for row in (_concerns(ids, filters, dated=False)
                .filter(Q(rag="red", raised_at__gte=first) | Q(breached_at__gte=first))
                .annotate(raised=_week_of("raised_at", first, ends, only=Q(rag="red")),
                          breached=_week_of("breached_at", first, ends))
                .values("raised", "breached").annotate(n=Count("pk"))):
        if row["raised"] is not None:
            figures["red_raised"][row["raised"]] += row["n"]
        if row["breached"] is not None:
            figures["breaches"][row["breached"]] += row["n"]

    return {
        "now": now,
        "weeks": [
            {"start": day, "end": day + dt.timedelta(days=6), "iso": "{}-W{:02d}".format(*day.isocalendar()[:2]),
             "current": i == len(starts) - 1, **{key: values[i] for key, values in figures.items()}}
            for i, day in enumerate(starts)
        ],
    }


def lead_choices(viewer: Professional, agency_id: int | None = None) -> QuerySet:
    """The "Lead professional" filter's choices: professionals who lead a workspace, of the viewer's own
    agency for a manager (teams are not modelled: a lead stands in for one), or of the agency chosen for
    a partnership lead (every agency's leads would be thousands of choices): none until one is chosen."""
    if not access.sees_every_agency(viewer):
        agency_id = viewer.agency_id
    if agency_id is None:
        return Professional.objects.none()
    return (Professional.objects.filter(Exists(Workspace.objects.filter(lead=OuterRef("pk"))), agency_id=agency_id)
            .only("public_id", "full_name", "is_active").order_by("full_name", "pk"))


def workspace_list(*, viewer: Professional, filters: Filters = NO_FILTERS, page: int | str = 1,
                   per_page: int = WORKSPACES_PER_PAGE) -> dict:
    """The workspaces the viewer oversees that pass the workspace filters (and, with an agency chosen,
    that agency takes part in), with counts of their actions and concerns as the other filters narrow
    them, the most overdue first. With an action status chosen, only workspaces that have such actions.
    Grouped once per summary table and sorted here, so the cost does not grow per workspace."""
    today = timezone.localdate()
    ids = _workspace_ids(viewer, filters, agency_takes_part=True)
    workspaces = Workspace.objects.all() if ids is None else Workspace.objects.filter(pk__in=ids)
    per_action = {r["workspace_id"]: r for r in _actions(ids, _action_terms(filters, today))
                  .values("workspace_id").annotate(**_action_counts(today))}
    per_concern = {r["workspace_id"]: r for r in _concerns(ids, filters)
                   .values("workspace_id").annotate(red=Count("pk", filter=Q(rag="red")), **_concern_counts())}
    rows = []
    for pk, reference in workspaces.values_list("pk", "reference"):
        a, c = per_action.get(pk, {}), per_concern.get(pk, {})
        if filters.action_status and not a:
            continue
        rows.append({"pk": pk, "reference": reference, "open": a.get("open", 0), "overdue": a.get("overdue", 0),
                     "completed": a.get("completed", 0), "red": c.get("red", 0), "late": c.get("late", 0),
                     "breached": c.get("breached", 0)})
    rows.sort(key=lambda r: (-r["overdue"], -r["late"], -r["open"], r["reference"]))
    paginated = Paginator(rows, per_page).get_page(page)
    shown = {w.pk: w for w in Workspace.objects.filter(pk__in=[r["pk"] for r in paginated])
             .select_related("lead__agency")}
    for row in paginated:
        workspace = shown[row["pk"]]
        row.update(status=workspace.get_status_display(), lead=workspace.lead.full_name,
                   lead_agency=workspace.lead.agency.name, lead_active=workspace.lead.is_active)
    return {"page": paginated, "count": len(rows)}


def workspace_detail(*, viewer: Professional, reference: str) -> dict | None:
    """One workspace's metadata for someone who oversees it (None for anyone else, or no such
    workspace): who leads it, which agencies take part, and each action's and concern's metadata,
    retracted ones marked. Never content."""
    workspace = access.workspace_overseen(viewer, reference)
    if workspace is None:
        return None
    today = timezone.localdate()
    team = list(Membership.objects.filter(workspace=workspace, state=Membership.State.ACTIVE,
                                          professional__is_active=True)
                .values("professional__agency__name").annotate(members=Count("pk"))
                .order_by("professional__agency__name"))
    action_rows = []
    for a in (ActionSummary.objects.filter(workspace=workspace).select_related("owner", "owner_agency")
              .annotate(owner_member=_still_member()).order_by("created_at", "pk")):
        completed = a.status in COMPLETED
        action_rows.append({
            "id": a.pk, "owner": a.owner.full_name, "owner_agency": a.owner_agency.name,
            "owner_member": a.owner_member, "status": a.status, "due_date": a.due_date,
            "overdue": not a.retracted and actions.overdue(a.status, a.due_date, today),
            "created_at": a.created_at, "accepted_at": a.accepted_at, "done_at": a.done_at,
            "confirmed_at": a.confirmed_at, "retracted": a.retracted,
            "on_time": (timezone.localdate(a.done_at) <= a.due_date
                        if completed and a.due_date and a.done_at else None),
        })
    concern_rows = []
    acknowledgements = Prefetch("acknowledgements", queryset=ConcernAcknowledgement.objects.select_related("agency")
                                .order_by("acknowledged_at"))
    for c in (ConcernSummary.objects.filter(workspace=workspace).select_related("author_agency")
              .prefetch_related(acknowledgements).order_by("raised_at", "pk")):
        concern_rows.append({
            "id": c.pk, "rag": c.rag, "agency": c.author_agency.name, "raised_at": c.raised_at, "due_at": c.due_at,
            "responded_at": c.responded_at, "breached_at": c.breached_at, "breach_count": c.breach_count,
            "retracted": c.retracted,
            "acknowledgements": [{"agency": k.agency.name, "at": k.acknowledged_at, "seconds": k.seconds}
                                 for k in c.acknowledgements.all()],
        })
    return {"workspace": workspace, "team": team, "actions": action_rows, "concerns": concern_rows, "today": today}


EXPORT_HEADER = ("workspace", "workspace_status", "lead_professional", "action_id", "owner", "owner_agency",
                 "owner_still_member", "status", "overdue", "due_date", "created_at", "accepted_at", "done_at",
                 "confirmed_at", "completed_by_due_date")


def export_rows(*, viewer: Professional, filters: Filters = NO_FILTERS) -> Iterator[tuple]:
    """The filtered actions' metadata, one tuple per action in EXPORT_HEADER's order (times in the site's
    time zone), for the CSV download. Read in chunks: a partnership's export may be every action."""
    today = timezone.localdate()

    def moment(value: dt.datetime | None) -> str:
        return timezone.localtime(value).isoformat(timespec="seconds") if value else ""

    rows = (_actions(_workspace_ids(viewer, filters), _action_terms(filters, today))
            .annotate(owner_member=_still_member())
            .order_by("workspace__reference", "created_at", "pk")
            .values_list("workspace__reference", "workspace__status", "workspace__lead__full_name", "action_id",
                         "owner__full_name", "owner_agency__name", "owner_member", "status", "due_date", "created_at",
                         "accepted_at", "done_at", "confirmed_at"))
    for (reference, workspace_status, lead, action_id, owner, agency, member, status, due, created, accepted, done,
         confirmed) in rows.iterator(chunk_size=2000):
        on_time = ""
        if status in COMPLETED and due and done:
            on_time = "yes" if timezone.localdate(done) <= due else "no"
        yield (reference, workspace_status, lead, action_id, owner, agency, "yes" if member else "no", status,
               "yes" if actions.overdue(status, due, today) else "no", due.isoformat() if due else "",
               moment(created), moment(accepted), moment(done), moment(confirmed), on_time)
