"""The contract's rules for CDRs and alerts, as SQL the sink's decoder runs on every batch.

Anyone who can write ``cdrs`` or ``alerts`` can write anything there, so the
sink checks every message field by field with the rules contract v1/v1.1
gives (those of :mod:`streams.domain.validation_fields` where a field comes
from an event) and the cross-field facts the contract states. A message that
breaks one becomes a ``rejects`` row with a DLQ-style reason (``too_large``,
``not_json``, ``not_object``, ``missing_field:<name>``, ``bad_field:<name>``,
``bad_key``) and never reaches ``cdrs``, ``alerts`` or the billing CSV. No
rule may refuse what a correct worker sends:
``tests/unit/test_sink_checks_worker.py`` feeds the checks everything the
worker's own code makes.

The rules read ``k``: the object parsed once, every field as its JSON text
(``"outbound"``, ``60.5``, ``true``; SQL NULL for null or absent) as the
JSON library re-writes it, so the text is canonical: a string escapes only
``"``, ``\\`` and control characters, a number is in shortest form
(``60.500`` reads ``60.5``). A field's rule is a pattern of that text (it
tells a string from a number) plus, for some, a condition on the typed
column the decoder derives from it. The first copy of a key given twice is
the one checked and the one stored. Every SQL piece here is a constant.

Speed: one regex over all fields' texts joined by U+0001 (which canonical
JSON text never holds) answers for a valid row at once; the rules one by one
run only for the rows it refuses, to name the first broken one.

Every rule, and the choices where the contract is silent (the formula-safe
``region``, numbers the warehouse cannot hold exactly, alert types to come),
are listed in docs/warehouse.md, "What the sink refuses".
"""

from __future__ import annotations

from typing import NamedTuple

from streams.domain.cdr import STATUS_BY_CAUSE
from streams.domain.events import CONTROLLER_RESULTS, DIRECTIONS, END_CAUSES, LINES

MAX_VALUE_BYTES = 1_048_576  # v1.1: no CDR or alert exceeds 1 MiB serialized
MAX_URLS = 100  # v1.1: a CDR keeps the first 100 distinct recording URLs
MAX_URL_CHARS = 2048  # v1.1: no string field is longer
SECONDS_LIMIT = 10**12
ALERT_FIELDS = ("alert_id", "type", "portal_id", "call_id", "ts", "detail")
ALERT_STATES = ("open", "resolved", "retracted")
PER_CALL_ALERTS = ("controller_bypassed", "stale_key", "license_error", "config_not_found",
                   "extranet_call", "unrated_call", "recording_missing")
OUTAGE = "controller_outage"

Check = tuple[str, str, str]  # (SQL true when the rule is broken, reason SQL, error SQL)

# Repeats are unbounded in patterns (a counted repeat copies its class into the compiled
# program: compiling took 0.1 s per batch) and bounded by length() in the extra conditions.
_ID = r"[A-Za-z0-9._:-]+"
_PHONE = r"\+[0-9]{3,15}"
_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_TS_MS = (_YEAR + r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
          r"\.[0-9]{3}Z")
_TS_WIRE = _TS_MS[:-1] + r"(?:[0-9]{3})?Z"  # an outage id's ts: milliseconds or microseconds
_SECONDS = r"[0-9]{1,12}(?:\.[0-9]{1,3})?"
_COUNT = r"[0-9]{1,19}"
# Characters of a string as canonical JSON text: anything but controls, " and \ as themselves.
_CHAR = r'(?:[^"\\\p{Cc}]|\\["\\])'
_URL_CHAR = r'(?:[^"\\\p{Cc}\p{Z}]|\\["\\])'  # no spaces either
_URL = (r'"(?i:https?)://(?:(?:[^/?#@"\\\p{Cc}\p{Z}]|\\["\\])*@)?'
        r'(?:\[[0-9A-Za-z:.%]+\]|(?:[^/?#@:\[\]"\\\p{Cc}\p{Z}]|\\["\\])+)(?::[0-9]*)?'
        rf'(?:[/?#]{_URL_CHAR}*)?"')
_REGION = r'"(?:[^=+\-@"\\\p{Cc}]|\\["\\])(?:[^"\\\p{Cc}]|\\["\\tnr])*"'


def k(name: str) -> str:
    """The field's JSON text; NULL when it is null or absent."""
    return f"struct_extract(k, '{name}')"


def s(name: str) -> str:
    """A string field without its quotes (exact once checked: its characters need no escaping)."""
    return f"{k(name)}[2:-2]"


def decoded(name: str) -> str:
    """A free-text string field, unescaped."""
    return f"json_extract_string({k(name)}, '$')"


def typed(name: str) -> str:
    """The decoder's typed column of the field (NULL when the text does not convert)."""
    return '"' + name + '"'


def quoted(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


class Field(NamedTuple):
    """One field's rule: its JSON text matches ``pattern`` and ``extra`` holds (when not null)."""

    name: str
    pattern: str
    expected: str
    nullable: bool = True
    extra: str | None = None  # SQL over k and the typed columns, true when the value is fine


def _id(name: str, nullable: bool = True) -> Field:
    return Field(name, f'"{_ID}"', "an id (1-64 characters of A-Z a-z 0-9 . _ : -)", nullable,
                 f"length({k(name)}) <= 66")


def _enum(name: str, values, nullable: bool = True) -> Field:
    return Field(name, '"(?:' + "|".join(sorted(values)) + ')"', "one of " + ", ".join(sorted(values)), nullable)


def _count(name: str, least: int, sql_type: str) -> Field:
    return Field(name, _COUNT, f"an integer >= {least} that fits {sql_type}", False, f"{typed(name)} >= {least}")


def _time(name: str, nullable: bool = True) -> Field:
    return Field(name, f'"{_TS_MS}"', "an RFC 3339 UTC time with milliseconds (2026-11-25T10:15:30.123Z)",
                 nullable, f"{typed(name)} IS NOT NULL")


def _ok(field: Field) -> str:
    ok = f"regexp_full_match({k(field.name)}, {quoted(field.pattern)})"
    if field.extra:
        ok += f" AND {field.extra}"
    return f"({k(field.name)} IS NULL OR ({ok}))" if field.nullable else ok


def _bad(name: str, ok: str, expected: str) -> Check:
    """Broken unless ``ok`` is true (NULL counts as broken); the error quotes the JSON text."""
    reason = (f"CASE WHEN {k(name)} IS NULL AND NOT json_exists(v, '$.{name}') "
              f"THEN 'missing_field:{name}' ELSE 'bad_field:{name}' END")
    return (f"NOT coalesce({ok}, false)", reason,
            f"{quoted(f'{name} must be {expected}, got ')} || coalesce(left({k(name)}, 80), 'null')")


def field_check(field: Field) -> Check:
    """The rule of one field as a check."""
    return _bad(field.name, _ok(field), field.expected + (" or null" if field.nullable else ""))


def fast_path(fields: list[Field], facts: list[Check]) -> str:
    """True only for a row every field rule and fact accepts: one regex over the fields'
    texts (null as ``null``) joined by U+0001, the extra conditions, no fact broken."""
    joined = ", ".join(f"coalesce({k(f.name)}, 'null')" for f in fields)
    pattern = "\\x01".join(f"(?:null|{f.pattern})" if f.nullable else f"(?:{f.pattern})" for f in fields)
    extras = [f"({k(f.name)} IS NULL OR {f.extra})" if f.nullable else f.extra for f in fields if f.extra]
    broken = [f"NOT coalesce({condition}, false)" for condition, _, _ in facts]
    return " AND ".join([f"regexp_full_match(concat_ws(chr(1), {joined}), {quoted(pattern)})",
                         *(f"coalesce({e}, false)" for e in extras), *broken])


def cdr_fields() -> list[Field]:
    """The rule of every CDR field, in the contract's order (recording_urls: its common forms)."""
    statuses = set(STATUS_BY_CAUSE.values()) | {"answered", "incomplete"}
    party = f'"(?:{_PHONE}|user:{_ID})"'
    return [
        _id("call_id", nullable=False), _id("portal_id", nullable=False),
        _count("version", 1, "BIGINT"),
        _enum("direction", DIRECTIONS), _enum("line", LINES),
        Field("from", party, "a phone or user:<id>", True, f"length({k('from')}) <= 71"),
        Field("to", party, "a phone or user:<id>", True, f"length({k('to')}) <= 71"),
        Field("line_number", f'"{_CHAR}+"', "1-64 characters without controls", True,
              f"length({typed('line_number')}) <= 64"),
        Field("shown_number", f'"{_PHONE}"', "a phone"),
        Field("extranet", "true|false", "true or false"),
        _id("user_id"),
        _time("started_at"), _time("answered_at"), _time("ended_at"),
        *[Field(n, _SECONDS, "a number >= 0 and < 10^12 with at most 3 decimals")
          for n in ("ring_s", "talk_s", "duration_s")],
        _enum("status", statuses, nullable=False), _enum("hangup_cause", END_CAUSES),
        _count("queue_attempts", 0, "INTEGER"),
        Field("forwarded_to", f'"(?:{_PHONE}|voicemail)"', "a phone or voicemail"),
        _enum("controller", ("bypassed", "checked", "none"), nullable=False),
        _enum("controller_result", CONTROLLER_RESULTS),
        Field("region", _REGION, "1-64 characters, no controls but tab/CR/LF inside, not starting with "
                                 "= + - @ tab CR LF", True, f"length({typed('region')}) <= 64"),
        Field("rate_per_min", r'"(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,18})?"', "a plain decimal string >= 0"),
        _count("billed_s", 0, "BIGINT"),
        Field("cost", r'"(?:0|[1-9][0-9]{0,15})\.[0-9]{2}"', "a decimal string >= 0 with 2 decimals", False),
        Field("currency", '"[A-Z]{3}"', "3 upper-case letters"),
        # No recording or one (a CDR's usual forms); recording_urls_check takes any other.
        Field("recording_urls", rf"\[\]|\[{_URL}\]", "", False,
              f"length({k('recording_urls')}) <= {MAX_URL_CHARS + 4}"),
        _count("recording_bytes", 0, "BIGINT"),
        Field("recording_s", _SECONDS, "a number >= 0 and < 10^12 with at most 3 decimals", False),
        _count("events", 1, "INTEGER"),
    ]


def recording_urls_sql() -> str:
    """``recording_urls`` as VARCHAR[] (an empty list fast)."""
    text = k("recording_urls")
    return (f"CASE WHEN {text} = '[]' THEN []::VARCHAR[] WHEN starts_with({text}, '[') "
            f"THEN json_transform({text}, '[\"VARCHAR\"]') END")


def recording_urls_check() -> Check:
    """Any number of recordings: at most 100 distinct http(s) URLs of at most 2,048 characters."""
    text = k("recording_urls")
    items = f"json_transform({text}, '[\"JSON\"]')"
    ok = (f"starts_with({text}, '[') AND len({items}) <= {MAX_URLS} "
          f"AND len(list_filter({items}, lambda u: NOT coalesce(regexp_full_match(u, {quoted(_URL)}) "
          f"AND length(json_extract_string(u, '$')) <= {MAX_URL_CHARS}, false))) = 0 "
          f"AND len(list_distinct({items})) = len({items})")
    return _bad("recording_urls", ok, f"at most {MAX_URLS} distinct http(s) URLs of at most "
                                      f"{MAX_URL_CHARS} characters, without spaces or controls")


_COMPLETE_FIELDS = ("direction", "line", "from", "to", "extranet", "started_at", "ended_at",
                    "ring_s", "talk_s", "duration_s", "hangup_cause")
_STATUS_OF_CAUSE = ("CASE " + " ".join(f"WHEN {k('hangup_cause')} = '\"{cause}\"' THEN '{status}'"
                                       for cause, status in sorted(STATUS_BY_CAUSE.items())) + " END")


def cdr_facts() -> list[Check]:
    """Cross-field facts the contract states; a correct worker always meets them."""
    status = s("status")
    complete = f"{k('status')} <> '\"incomplete\"'"
    checks = [(f"{complete} AND {k(name)} IS NULL", f"'bad_field:{name}'",
               f"'{name} is null in a ' || {status} || ' CDR (only an incomplete one may lack it)'")
              for name in _COMPLETE_FIELDS]
    expected = f"(CASE WHEN {k('answered_at')} IS NOT NULL THEN 'answered' ELSE {_STATUS_OF_CAUSE} END)"
    checks.append((f"{complete} AND {status} IS DISTINCT FROM {expected}", "'bad_field:status'",
                   f"'status ' || {status} || ' contradicts answered_at and hangup_cause (expected ' "
                   f"|| coalesce({expected}, 'null') || ')'"))
    checks.append((f"({k('controller')} = '\"checked\"' AND {k('controller_result')} IS NULL) OR "
                   f"({k('controller')} = '\"none\"' AND {k('controller_result')} IS NOT NULL)",
                   "'bad_field:controller_result'",
                   f"'controller_result contradicts controller ' || {s('controller')}"))
    unrated = f"{k('rate_per_min')} IS NULL"
    return checks + [
        (f"{unrated} AND ({k('billed_s')} <> '0' OR {k('cost')} <> '\"0.00\"')", "'bad_field:cost'",
         "'a CDR without rate_per_min bills nothing: billed_s 0 and cost 0.00'"),
        (f"{unrated} AND {k('currency')} IS NOT NULL", "'bad_field:currency'", "'currency without rate_per_min'"),
        (f"NOT {unrated} AND {k('currency')} IS NULL", "'bad_field:currency'", "'rate_per_min without currency'"),
        (f"NOT {unrated} AND {k('region')} IS NULL", "'bad_field:region'", "'rate_per_min without region'"),
        (f"{k('line')} = '\"internal\"' AND {k('region')} IS DISTINCT FROM '\"internal\"'", "'bad_field:region'",
         "'an internal call''s region is internal'"),
    ]


def _alert_id_shape() -> str:
    alert_id, kind, call, portal = s("alert_id"), s("type"), s("call_id"), s("portal_id")
    per_call = ", ".join(quoted(t) for t in PER_CALL_ALERTS)
    opened = f"substr({alert_id}, length('{OUTAGE}:' || {portal} || ':') + 1)"
    return (f"CASE WHEN {kind} IN ({per_call}) THEN {alert_id} = {kind} || ':' || {call} "
            f"WHEN {kind} = '{OUTAGE}' THEN starts_with({alert_id}, '{OUTAGE}:' || {portal} || ':') "
            f"AND regexp_full_match({opened}, {quoted(_TS_WIRE)}) AND TRY_CAST(left({opened}, 10) AS DATE) IS NOT NULL "
            f"ELSE starts_with({alert_id}, {kind} || ':') AND length({alert_id}) BETWEEN length({kind}) + 2 "
            f"AND length({kind}) + 193 END")


def alert_fields() -> list[Field]:
    """The rule of every alert field; the id last, its shape depends on the type, call and portal."""
    return [
        Field("type", '"[a-z][a-z0-9_]*"', "an alert type (1-64 of a-z, 0-9, _, a letter first)", False,
              f"length({k('type')}) <= 66"),
        _id("portal_id", nullable=False), _id("call_id"),
        _time("ts", nullable=False),
        Field("detail", r"(?s)\{.*\}", "an object", False),
        # Every id shape is made of id characters (a ts included), which never need escaping.
        Field("alert_id", '"[A-Za-z0-9._:-]+"', "<type>:<call_id>, controller_outage:<portal_id>:<ts> "
              "or <rule>:<1-192 id characters>", False, _alert_id_shape()),
    ]


def alert_facts() -> list[Check]:
    """The state of an alert, and the call each type names or not."""
    per_call = ", ".join(quoted(f'"{t}"') for t in PER_CALL_ALERTS)
    states = ", ".join(quoted(f'"{state}"') for state in ALERT_STATES)
    state = f"json_extract({k('detail')}, '$.state')"
    keys = f"json_keys({k('detail')})"
    return [
        # Readers that take the last copy of a key would see another state than the warehouse.
        (f"len({keys}) <> len(list_distinct({keys}))", "'bad_field:detail'", "'detail has a key twice'"),
        (f"{state} IS NOT NULL AND {state} NOT IN ({states})", "'bad_field:detail.state'",
         f"'detail.state must be open, resolved or retracted, got ' || left({state}, 80)"),
        (f"{k('type')} IN ({per_call}) AND {k('call_id')} IS NULL", "'bad_field:call_id'",
         f"'a ' || {s('type')} || ' alert names its call'"),
        (f"{k('type')} = '\"{OUTAGE}\"' AND {k('call_id')} IS NOT NULL", "'bad_field:call_id'",
         "'a controller_outage alert has call_id null'"),
    ]


def key_check(field: str) -> Check:
    """The message key must be the ``field`` (call_id on cdrs, portal_id on alerts)."""
    return (f"kafka_key IS DISTINCT FROM encode({s(field)})", "'bad_key'",
            f"'the message key must be the {field} ' || {s(field)}")
