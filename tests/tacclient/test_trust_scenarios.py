"""The Python client's half of the hostile-server scenarios (tests/scenarios.py): tacclient believes
nothing the server says unless it verifies, and each scenario's outcome is what it must be. The browser's
half (tests/browser/test_trust_scenarios.py) runs the same scenarios through workspace.js and record.js."""

import pytest

from tests import scenarios


@pytest.fixture
def built(lead, gp, manager, outsider, custodian, capture_events):
    return scenarios.build(lead, gp, manager, outsider, custodian)


def test_every_hostile_scenario_ends_as_it_must(built):
    names = [s["name"] for s in built]
    assert len(names) == len(set(names)) and len(names) >= 18
    for s in built:
        scenarios.check(s, scenarios.outcome(s))
