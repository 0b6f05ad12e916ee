"""The rules file: the issue's file works as written; routing; one-line errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from notify.channels import check_channel, display
from notify.rules import RulesError, load_rules
from tests.unit.notify_samples import make_alert

pytestmark = pytest.mark.unit

ISSUE_RULES = '''[[route]]
types = ["controller_bypassed", "controller_outage", "stale_key"]
portals = ["*"]
states = ["open", "resolved"]
channels = ["json://127.0.0.1:18111/hook"]
group_s = 0
'''
EXAMPLE = Path(__file__).resolve().parents[2] / "notify" / "rules.example.toml"


def _rules(tmp_path: Path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return load_rules(path, check_channel), path


def test_the_issues_rules_file_works_exactly_as_written(tmp_path):
    rules, _ = _rules(tmp_path, ISSUE_RULES)
    (route,) = rules.routes
    assert route.channels == ("json://127.0.0.1:18111/hook",) and route.group_s == 0 and route.min_hits == 1
    for kind in ("controller_bypassed", "controller_outage", "stale_key"):
        for state in ("open", "resolved"):
            assert rules.routes_for(make_alert(f"{kind}:x", state=state, portal="any-portal")) == [route]
        assert rules.routes_for(make_alert(f"{kind}:x", state="retracted")) == []
    assert rules.routes_for(make_alert("license_error:c-1")) == []


def test_the_packaged_example_loads_and_says_how_it_is_written():
    rules = load_rules(EXAMPLE, check_channel)
    assert len(rules.routes) >= 1
    text = EXAMPLE.read_text()
    for word in ("group_s", "min_hits", "window_s", "continue", "bitrix24://", "Idempotency"):
        assert word in text


def test_the_first_matching_route_wins_unless_it_continues(tmp_path):
    rules, _ = _rules(tmp_path, '''
[[route]]
name = "acme outages"
types = ["controller_outage"]
portals = ["acme"]
channels = ["json://127.0.0.1:1/acme"]
continue = true
[[route]]
types = ["controller_outage"]
channels = ["json://127.0.0.1:1/ops"]
[[route]]
channels = ["json://127.0.0.1:1/everything-else"]
''')
    def names(alert):
        return [r.channels[0].rsplit("/", 1)[1] for r in rules.routes_for(alert)]

    assert names(make_alert("controller_outage:acme:t", portal="acme", call_id=None)) == ["acme", "ops"]
    assert names(make_alert("controller_outage:b:t", portal="b", call_id=None)) == ["ops"]
    assert names(make_alert("stale_key:c-1")) == ["everything-else"]
    assert rules.routes[0].name == "acme outages" and rules.routes[1].name == "route 2"


@pytest.mark.parametrize("text, line, fragment", [
    ("[[route]]\nchannels = [\"json://h/x\"]\ngroup_s = -1\n", 3, "group_s must be a whole number"),
    ("[[route]]\nchannels = [\"json://h/x\"]\n\n[[route]]\nchanels = [\"json://h/x\"]\n", 5, "unknown key 'chanels'"),
    ("[[route]]\nchannels = [\"json://h/x\"]\nstates = [\"opened\"]\n", 3, "unknown state 'opened'"),
    ("[[route]]\ntypes = \"controller_outage\"\nchannels = [\"json://h/x\"]\n", 2, "types must be a non-empty list"),
    ("[[route]]\nchannels = []\n", 2, "channels must be a list"),
    ("[[route]]\nchannels = [\"nosuchscheme://h/x\"]\n", 2, "channel 1: not a channel URL Apprise can use"),
    ("[[route]]\nchannels = [\"json://h/x\"\n", 2, "not valid TOML"),
    ("[[route]]\nchannels = [\"json://h/x\"]\ncontinue = \"yes\"\n", 3, "continue must be true or false"),
    ("[route]\nchannels = [\"json://h/x\"]\n", 1, "array of tables"),
    ("[routes]\n", 1, "unknown table or key 'routes'"),
    ("[[route]]\nchannels = [\"json://h/x\"]\nmin_hits = 0\n", 3, "min_hits must be a whole number"),
])
def test_a_broken_rules_file_is_one_line_naming_file_and_line(tmp_path, text, line, fragment):
    with pytest.raises(RulesError) as caught:
        _rules(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'rules.toml'}:{line}:"), message
    assert fragment in message


def test_a_missing_or_binary_rules_file_is_one_line(tmp_path):
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe[[route]]")
    with pytest.raises(RulesError, match="not UTF-8"):
        load_rules(tmp_path / "bin.toml")


def test_no_rules_file_means_no_routes():
    assert load_rules(None).routes == ()


def test_channel_urls_are_shown_without_secrets():
    shown = display("mailto://user:secretpw@mail.example.com?to=a@example.com")
    assert "secretpw" not in shown and shown.startswith("mailto://")
    assert "TOKENSECRET" not in display("bitrix24://portal.example/rest/1/TOKENSECRET/")
    assert display("json://127.0.0.1:18111/hook") == "json://127.0.0.1:18111/hook"
