"""The browser's action rule (frontend/static/tac/actions.js) is tacprotocol/actions.py's, case by case:
every start state, every status a post may carry (and some it may not), by the owner, the lead, the owner
who leads, and someone else, naming no new owner, the current one or another; the same answer and the
same words for a refusal. And the same overdue."""

import datetime as dt
import itertools

import pytest

from tacprotocol import actions

pytestmark = pytest.mark.browser

OWNER, LEAD, OTHER, NEWCOMER = "owner-id", "lead-id", "other-id", "newcomer-id"
AUTHORS = {"owner": (OWNER, LEAD), "lead": (LEAD, LEAD), "other": (OTHER, LEAD), "owner who leads": (OWNER, OWNER)}

BROWSER_SIDE = """
async (cases) => {
  const a = await import('/static/tac/actions.js');
  const rule = cases.rule.map((v) => {
    const { after, refused } = a.change({ status: v.state, owner: v.owner }, { status: v.status, author: v.author, lead: v.lead, newOwner: v.new_owner });
    return { after: after && [after.status, after.owner], refused };
  });
  const overdue = cases.overdue.map((v) => a.overdue(v.status, v.due, v.today));
  return { rule, overdue, tables: { states: a.STATES, changes: a.CHANGES, pending: a.PENDING, rules: a.RULES } };
}
"""


def rule_cases():
    for state, status, (author, (who, lead)), new_owner in itertools.product(
            actions.STATES, (*actions.CHANGES, "open", "finished", ""), AUTHORS.items(), (None, OWNER, NEWCOMER)):
        yield {"state": state, "owner": OWNER, "status": status, "author": who, "lead": lead, "new_owner": new_owner,
               "label": f"{author} makes a {state} action {status!r}, naming {new_owner}"}


def overdue_cases():
    today = dt.date(2025, 3, 10)
    for status, due in itertools.product(actions.STATES, (None, today - dt.timedelta(days=1), today,
                                                          today + dt.timedelta(days=1))):
        yield {"status": status, "due": due.isoformat() if due else None, "today": today.isoformat(),
               "python": actions.overdue(status, due, today)}


def test_it_answers_every_change_as_python_does(page):
    rule, overdue = list(rule_cases()), list(overdue_cases())
    page.goto("/accounts/sign-in/")
    got = page.evaluate(BROWSER_SIDE, {"rule": rule, "overdue": overdue})
    assert got["tables"] == {
        "states": list(actions.STATES), "changes": list(actions.CHANGES), "pending": list(actions.PENDING),
        "rules": {k: [list(sources), list(who)] for k, (sources, who) in actions.RULES.items()},
    }
    allowed = 0
    for case, browser in zip(rule, got["rule"], strict=True):
        after, refused = actions.change(actions.ActionState(case["state"], case["owner"]), status=case["status"],
                                        author=case["author"], lead=case["lead"], new_owner=case["new_owner"])
        python = {"after": [after.status, after.owner] if after else None, "refused": refused}
        assert browser == python, case["label"]
        allowed += after is not None
    assert allowed > 20  # the table allows something from every source state it names
    assert got["overdue"] == [case["python"] for case in overdue]
