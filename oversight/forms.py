"""The dashboards' filters (a GET form): parsed and checked here, turned into selectors.Filters."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.http import urlencode

from accounts.models import Agency, Professional
from messaging.models import Workspace

from . import access, selectors


class LeadChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Professional) -> str:
        return f"{obj.full_name}{'' if obj.is_active else ' (offboarded)'}"

    def to_python(self, value):
        # Not a UUID at all says the same as a UUID that is not on the list.
        try:
            return super().to_python(value)
        except ValidationError as exc:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice") from exc


class FilterForm(forms.Form):
    # Field names are the query string's: short, and stable for bookmarks and the CSV link.
    agency = forms.ModelChoiceField(
        queryset=Agency.objects.order_by("name"), required=False, empty_label="All agencies",
        error_messages={"invalid_choice": "Choose an agency from the list"})
    lead = LeadChoiceField(
        queryset=Professional.objects.none(), to_field_name="public_id", required=False,
        empty_label="Any lead professional",
        error_messages={"invalid_choice": "Choose a lead professional from the list"})
    date_from = forms.DateField(required=False, input_formats=["%Y-%m-%d"],
                                error_messages={"invalid": "Enter the start date as a real date, like 2026-10-27"})
    date_to = forms.DateField(required=False, input_formats=["%Y-%m-%d"],
                              error_messages={"invalid": "Enter the end date as a real date, like 2026-12-04"})
    workspace_status = forms.ChoiceField(
        choices=[("", "Any status"), *Workspace.Status.choices], required=False,
        error_messages={"invalid_choice": "Choose a workspace status from the list"})
    action_status = forms.ChoiceField(
        choices=[("", "Any status"), *selectors.ACTION_STATUSES.items()], required=False,
        error_messages={"invalid_choice": "Choose an action status from the list"})

    def __init__(self, data, *, viewer: Professional):
        # Unbound when nothing was asked for, so the page opens without errors.
        super().__init__({k: v for k, v in data.items() if k in self.base_fields} or None)
        # A partnership lead's choices are the chosen agency's leads (selectors.lead_choices says why).
        agency = self.data.get("agency", "") if self.is_bound else ""
        # At most 18 digits: an id (a bigint) always, and never a number too long for int() (Python refuses
        # over 4,300 digits: a query string of 5,000 nines was a 500, found by tests/oversight/test_properties.py).
        agency_id = int(agency) if agency.isdigit() and agency.isascii() and len(agency) <= 18 else None
        self.fields["lead"].queryset = selectors.lead_choices(viewer, agency_id)
        if access.sees_every_agency(viewer):
            self.lead_hint = ("Workspaces this professional leads. Choose an agency and apply the filters to list "
                              "its lead professionals")
        else:
            self.lead_hint = (f"Workspaces this professional of {viewer.agency.name} leads (teams are not recorded in "
                              "the service)")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date must be the same as or after the start date")
        return cleaned

    def filters(self) -> selectors.Filters:
        """What passed its checks (a field with an error is left out, and the page says so)."""
        if not self.is_bound:
            return selectors.NO_FILTERS
        self.is_valid()
        cleaned = self.cleaned_data
        agency, lead = cleaned.get("agency"), cleaned.get("lead")
        return selectors.Filters(
            agency_id=agency.pk if agency else None, lead_id=lead.pk if lead else None,
            date_from=cleaned.get("date_from"), date_to=cleaned.get("date_to"),
            workspace_status=cleaned.get("workspace_status") or "", action_status=cleaned.get("action_status") or "")

    def error_list(self) -> list[tuple[str, str]]:
        """(field id, message) for includes/error_summary.html."""
        if not self.is_bound:
            return []
        return [(f"filter-{name}", errors[0]) for name, errors in self.errors.items()]

    def query(self) -> str:
        """The valid filters as a query string, for the links that carry them (CSV, workspaces, back)."""
        if not self.is_bound:
            return ""
        self.is_valid()
        pairs = {name: self.data[name] for name in self.fields
                 if name in self.cleaned_data and self.cleaned_data[name] not in (None, "")}
        return urlencode(pairs)

    def described(self) -> list[tuple[str, str]]:
        """(label, value) for each filter in use, to say on the page what the figures cover."""
        if not self.is_bound:
            return []
        self.is_valid()
        labels = {"agency": "Agency", "lead": "Lead professional", "date_from": "From", "date_to": "To",
                  "workspace_status": "Workspace status", "action_status": "Action status"}
        said = []
        for name, label in labels.items():
            value = self.cleaned_data.get(name)
            if value in (None, ""):
                continue
            if name == "lead":
                value = self.fields["lead"].label_from_instance(value)
            elif name in ("workspace_status", "action_status"):
                value = dict(self.fields[name].choices)[value]
            elif name in ("date_from", "date_to"):
                value = value.strftime("%-d %B %Y")
            said.append((label, str(value)))
        return said
