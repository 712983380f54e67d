"""The managers' dashboards: parse the filters, call the selectors, answer. Managers and partnership
leads only (access.dashboard_required: anyone else gets the 403 page); a workspace nobody lets this
viewer oversee is a 404, as if it did not exist."""

from __future__ import annotations

import csv

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.services import audit_record

from . import access, charts, selectors
from .forms import FilterForm

NOT_FOUND = "No such workspace, or not one you oversee"


def _scope_sentence(viewer) -> str:
    if access.sees_every_agency(viewer):
        return "Every workspace in the service (you are a safeguarding partnership lead)."
    return f"Workspaces led by, or with an active member from, {viewer.agency.name}."


def _clock_sentence() -> str:
    """The response timescales as settings have them (oversight/clocks.py), in words."""
    said = []
    for rag in selectors.RAGS:
        hours = settings.TAC_CONCERN_CLOCK_HOURS.get(rag)
        if hours is not None:
            said.append(f"{rag} within {hours} hour{pluralize(hours)} around the clock")
        else:
            days = settings.TAC_CONCERN_CLOCK_WORKING_DAYS[rag]
            said.append(f"{rag} within {days} working day{pluralize(days)}")
    return "; ".join(said)


def _trend_charts(weeks: list[dict]) -> list[dict]:
    made = [
        charts.line_chart(slug="actions", title="Actions created and completed each week", weeks=weeks, series=[
            charts.Series("Created", "created", 1), charts.Series("Completed", "completed", 2),
            charts.Series("Completed by the due date", "on_time", 3)]),
        charts.bar_chart(slug="overdue", title="Actions overdue at the end of each week", weeks=weeks,
                         series=charts.Series("Overdue at the week's end", "overdue", 4)),
        charts.line_chart(slug="concerns", title="Red concerns raised and response clocks run out each week",
                          weeks=weeks, series=[charts.Series("Red concerns raised", "red_raised", 1),
                                               charts.Series("Response clocks run out", "breaches", 3)]),
    ]
    columns = {
        "actions": [("Created", "created"), ("Completed", "completed"), ("Completed by the due date", "on_time")],
        "overdue": [("Overdue at the week's end", "overdue")],
        "concerns": [("Red concerns raised (rated red now)", "red_raised"), ("Response clocks run out", "breaches")],
    }
    for chart in made:
        chart["columns"] = columns[chart["slug"]]
        chart["rows"] = [{"start": w["start"], "current": w["current"],
                          "values": [(key, w[key]) for _, key in chart["columns"]]} for w in weeks]
    return made


@require_GET
@access.dashboard_required
def dashboard(request):
    form = FilterForm(request.GET, viewer=request.user)
    filters = form.filters()
    figures = selectors.dashboard(viewer=request.user, filters=filters)
    trend = selectors.trends(viewer=request.user, filters=filters)
    return render(request, "oversight/dashboard.html", {
        "form": form, "errors": form.error_list(), "query": form.query(), "described": form.described(),
        "scope": _scope_sentence(request.user), "figures": figures, "trends": trend,
        "charts": _trend_charts(trend["weeks"]), "owner_rows": selectors.OWNER_ROWS, "clock": _clock_sentence(),
    })


@require_GET
@access.dashboard_required
def workspaces(request):
    form = FilterForm(request.GET, viewer=request.user)
    listed = selectors.workspace_list(viewer=request.user, filters=form.filters(), page=request.GET.get("page") or 1)
    return render(request, "oversight/workspaces.html", {
        "form": form, "errors": form.error_list(), "query": form.query(), "described": form.described(),
        "scope": _scope_sentence(request.user), "listed": listed, "page": listed["page"],
    })


@require_GET
@access.dashboard_required
def workspace(request, reference: str):
    detail = selectors.workspace_detail(viewer=request.user, reference=reference)
    if detail is None:
        raise Http404(NOT_FOUND)
    back = request.GET.get("back", "")
    return render(request, "oversight/workspace.html", {**detail, "back": back if back.startswith("?") else ""})


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such a cell gets
# a leading apostrophe, which spreadsheets show as text. Names come from agency administrators' input.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@access.dashboard_required
def export(request):
    """The filtered actions' metadata as CSV, built whole and audited (who, which filters, how many rows)
    before any of it is sent: if the audit cannot be written, nothing is exported."""
    form = FilterForm(request.GET, viewer=request.user)
    filters = form.filters()
    writer = csv.writer(_Echo())
    lines = [writer.writerow(selectors.EXPORT_HEADER)]
    lines.extend(writer.writerow([csv_safe(cell) for cell in row])
                 for row in selectors.export_rows(viewer=request.user, filters=filters))
    audit_record(kind="oversight.exported", actor=request.user, request=request,
                 data={"filters": {k: str(v) for k, v in vars(filters).items() if v not in (None, "")},
                       "rows": len(lines) - 1})
    response = HttpResponse("".join(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="tac-actions-{timezone.localdate():%Y-%m-%d}.csv"')
    return response
