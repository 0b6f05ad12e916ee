"""The contract's rules for CDRs and alerts, applied by the sink to what it reads.

Anyone who can write ``cdrs`` or ``alerts`` can write anything there, so the
sink checks every message field by field with the rules contract v1/v1.1
gives (the event checks of :mod:`streams.domain.validation_fields` where a
field comes from an event) and a few cross-field facts the contract implies.
A message that fails becomes a ``rejects`` row with a DLQ-style reason
(``too_large``, ``not_json``, ``not_object``, ``missing_field:<name>``,
``bad_field:<name>``, ``bad_key``); it never reaches ``cdrs``, ``alerts`` or
the billing CSV. Every rule is one a correct worker's output always meets
(``tests/unit/test_output_checks.py`` feeds it everything the worker makes).

Choices where the contract is silent (documented in warehouse/DESIGN.md):
- ``region`` is the tariff table's free text: 1-64 printable characters (line
  breaks and tabs allowed inside: the CSV quotes them), not starting with
  ``=``, ``+``, ``-``, ``@``, tab, CR or LF (a spreadsheet would run such a
  cell as a formula: the OWASP list of CSV-injection prefixes);
- seconds are JSON numbers equal to a 3-decimal value, >= 0 and < 10^12 (the
  range in which a double holds every 3-decimal value exactly); counts must
  fit their warehouse column (INTEGER or BIGINT): a value the warehouse
  cannot store exactly is refused, never stored altered;
- alert types beyond the contract's are accepted when they look like rule
  names (``[a-z][a-z0-9_]{0,63}``), with an ``alert_id`` of ``<type>:`` and
  1-192 id characters (threshold rules: ``<rule>:<portal>:<window start>``).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import orjson

from streams.domain.cdr import STATUS_BY_CAUSE
from streams.domain.cdr_json import CDR_FIELDS
from streams.domain.events import CONTROLLER_RESULTS, DIRECTIONS, END_CAUSES, LINES
from streams.domain.validation_fields import (Reject, enum, fail, forward_target, ident,
                                              integer, known_ident, nullable_ident, nullable_phone,
                                              nullable_text, party, show, ts_to_us, url)

MAX_VALUE_BYTES = 1_048_576  # v1.1: no CDR or alert exceeds 1 MiB serialized
MAX_URLS = 100  # v1.1: a CDR keeps the first 100 distinct recording URLs
MAX_STRING_CHARS = 2048  # v1.1: no string field is longer (URLs included)
INT32_MAX = 2**31 - 1  # queue_attempts and events are INTEGER columns
SECONDS_LIMIT = 10**12

STATUSES = frozenset(STATUS_BY_CAUSE.values()) | {"answered", "incomplete"}
CONTROLLERS = frozenset({"bypassed", "checked", "none"})
ALERT_STATES = frozenset({"open", "resolved", "retracted"})
PER_CALL_ALERTS = frozenset({"controller_bypassed", "stale_key", "license_error", "config_not_found",
                             "extranet_call", "unrated_call", "recording_missing"})
OUTAGE = "controller_outage"
ALERT_FIELDS = ("alert_id", "type", "portal_id", "call_id", "ts", "detail")

_CDR_KEYS = frozenset(CDR_FIELDS)
_ALERT_KEYS = frozenset(ALERT_FIELDS)
_is_ts_ms = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z").fullmatch
_is_ts_wire = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.(?:[0-9]{3}|[0-9]{6})Z").fullmatch
_is_cost = re.compile(r"(?:0|[1-9][0-9]{0,15})\.[0-9]{2}").fullmatch  # DECIMAL(18,2)
_is_rate = re.compile(r"(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,18})?").fullmatch  # DECIMAL(18,6) range
_is_currency = re.compile(r"[A-Z]{3}").fullmatch
_is_region = re.compile(r"[^=+\-@\t\r\n].{0,63}", re.DOTALL).fullmatch
_LINE_BREAKS = str.maketrans("", "", "\t\n\r")
_KNOWN_REGIONS: set[str] = set()  # regions that passed (a tariff table has a few); bounded
_KNOWN_REGIONS_MAX = 10_000
_is_rule_type = re.compile(r"[a-z][a-z0-9_]{0,63}").fullmatch
_is_rule_id_tail = re.compile(r"[A-Za-z0-9._:-]{1,192}").fullmatch
_TS_TEXT = "an RFC 3339 UTC timestamp with milliseconds (2026-11-25T10:15:30.123Z)"


def _timestamp(d: dict, name: str, nullable: bool = True) -> None:
    x = d.get(name)
    if x is None and nullable:
        return
    if type(x) is str and _is_ts_ms(x) and ts_to_us(x) is not None:
        return
    raise fail(name, x, _TS_TEXT + (" or null" if nullable else ""))


def _seconds(d: dict, name: str, nullable: bool = True) -> None:
    x = d.get(name)
    if x is None and nullable:
        return
    if type(x) is float and 0.0 <= x < SECONDS_LIMIT and round(x, 3) == x:
        return
    if type(x) is int and 0 <= x < SECONDS_LIMIT:
        return
    raise fail(name, x, "a number >= 0 and < 10^12 with at most 3 decimals"
               + (" or null" if nullable else ""))


def _nullable(check: Callable[[dict, str], Any], d: dict, name: str) -> None:
    if d[name] is not None:
        check(d, name)


def _nullable_enum(d: dict, name: str, allowed: frozenset[str]) -> None:
    if d[name] is not None:
        enum(d, name, allowed)


def _matching(d: dict, name: str, is_ok: Callable[[str], Any], expected: str) -> None:
    x = d[name]
    if x is None or (type(x) is str and is_ok(x)):
        return
    raise fail(name, x, expected + " or null")


def _bounded(d: dict, name: str, minimum: int, maximum: int) -> None:
    if integer(d, name, minimum) > maximum:
        raise fail(name, d[name], f"an integer between {minimum} and {maximum}")


def _region(d: dict) -> None:
    x = d["region"]
    if x is None or (type(x) is str and x in _KNOWN_REGIONS):
        return
    if type(x) is str and _is_region(x) and x.translate(_LINE_BREAKS).isprintable():
        if len(_KNOWN_REGIONS) >= _KNOWN_REGIONS_MAX:
            _KNOWN_REGIONS.clear()
        _KNOWN_REGIONS.add(x)
        return
    raise fail("region", x, "1-64 printable characters (tab, CR, LF inside) not starting with "
                            "= + - @ tab CR LF, or null")


def _recording_urls(d: dict) -> None:
    urls = d["recording_urls"]
    if type(urls) is not list or len(urls) > MAX_URLS:
        raise fail("recording_urls", urls, f"an array of at most {MAX_URLS} URLs")
    for item in urls:
        if type(item) is not str or len(item) > MAX_STRING_CHARS:
            raise fail("recording_urls", item, f"URLs of at most {MAX_STRING_CHARS} characters")
        url({"recording_urls": item}, "recording_urls")
    if len(set(urls)) != len(urls):
        raise Reject("bad_field:recording_urls", "recording_urls must be distinct")


def check_cdr(d: dict) -> None:
    """Raise :class:`Reject` at the first rule of the contract's CDR that ``d`` breaks."""
    if not _CDR_KEYS <= d.keys():
        missing = next(name for name in CDR_FIELDS if name not in d)
        raise Reject(f"missing_field:{missing}", f"{missing} is missing")
    ident(d, "call_id")
    known_ident(d, "portal_id")
    integer(d, "version", 1)
    _nullable_enum(d, "direction", DIRECTIONS)
    _nullable_enum(d, "line", LINES)
    _nullable(party, d, "from")
    _nullable(party, d, "to")
    nullable_text(d, "line_number")
    nullable_phone(d, "shown_number")
    if d["extranet"] is not None and type(d["extranet"]) is not bool:
        raise fail("extranet", d["extranet"], "true, false or null")
    nullable_ident(d, "user_id")
    for name in ("started_at", "answered_at", "ended_at"):
        _timestamp(d, name)
    for name in ("ring_s", "talk_s", "duration_s"):
        _seconds(d, name)
    enum(d, "status", STATUSES)
    _nullable_enum(d, "hangup_cause", END_CAUSES)
    _bounded(d, "queue_attempts", 0, INT32_MAX)
    _nullable(forward_target, d, "forwarded_to")
    enum(d, "controller", CONTROLLERS)
    _nullable_enum(d, "controller_result", CONTROLLER_RESULTS)
    _region(d)
    _matching(d, "rate_per_min", _is_rate, "a plain decimal string >= 0 (1.50), at most 12 integer digits")
    integer(d, "billed_s", 0)
    if not (type(d["cost"]) is str and _is_cost(d["cost"])):
        raise fail("cost", d["cost"], "a decimal string >= 0 with exactly 2 decimals (12.34)")
    _matching(d, "currency", _is_currency, "3 upper-case letters (ISO 4217)")
    _recording_urls(d)
    integer(d, "recording_bytes", 0)
    _seconds(d, "recording_s", nullable=False)
    _bounded(d, "events", 1, INT32_MAX)
    _check_cdr_facts(d)


def _check_cdr_facts(d: dict) -> None:
    """Cross-field facts the contract states (cheap; a correct worker always meets them)."""
    status = d["status"]
    if status != "incomplete":  # both call.started and call.ended are known
        for name in ("direction", "line", "from", "to", "extranet", "started_at", "ended_at",
                     "ring_s", "talk_s", "duration_s", "hangup_cause"):
            if d[name] is None:
                raise Reject(f"bad_field:{name}", f"{name} is null in a {status} CDR (only an "
                                                  "incomplete one may lack it)")
        answered = d["answered_at"] is not None
        expected = "answered" if answered else STATUS_BY_CAUSE[d["hangup_cause"]]
        if status != expected:
            raise Reject("bad_field:status", f"status {status!r} contradicts answered_at/hangup_cause "
                                             f"(expected {expected!r})")
    result = d["controller_result"]
    if (d["controller"] == "checked" and result is None) or (d["controller"] == "none" and result is not None):
        raise Reject("bad_field:controller_result",
                     f"controller_result {show(result)} contradicts controller {d['controller']!r}")
    if d["rate_per_min"] is None:  # unrated or internal: nothing billed (contract, Rating)
        if d["billed_s"] != 0 or d["cost"] != "0.00":
            raise Reject("bad_field:cost", "a CDR without rate_per_min must have billed_s 0 and cost 0.00")
        if d["currency"] is not None:
            raise Reject("bad_field:currency", "currency without rate_per_min")
    elif d["currency"] is None or d["region"] is None:
        raise Reject("bad_field:currency" if d["currency"] is None else "bad_field:region",
                     "a rated CDR (rate_per_min set) must carry region and currency")
    if d["line"] == "internal" and d["region"] != "internal":
        raise Reject("bad_field:region", f"an internal call's region must be 'internal', got {show(d['region'])}")


def check_alert(d: dict) -> None:
    """Raise :class:`Reject` at the first rule of the contract's alert that ``d`` breaks."""
    if not _ALERT_KEYS <= d.keys():
        missing = next(name for name in ALERT_FIELDS if name not in d)
        raise Reject(f"missing_field:{missing}", f"{missing} is missing")
    kind = d["type"]
    if not (type(kind) is str and _is_rule_type(kind)):
        raise fail("type", kind, "an alert type (a-z, 0-9, _; 1-64 characters, a letter first)")
    portal = known_ident(d, "portal_id")
    call = nullable_ident(d, "call_id")
    _timestamp(d, "ts", nullable=False)
    detail = d["detail"]
    if type(detail) is not dict:
        raise fail("detail", detail, "an object")
    state = detail.get("state", "open")
    if type(state) is not str or state not in ALERT_STATES:
        raise Reject("bad_field:detail.state", f"detail.state must be open, resolved or retracted, got {show(state)}")
    alert_id = d["alert_id"]
    if type(alert_id) is not str:
        raise fail("alert_id", alert_id, "a string")
    if kind in PER_CALL_ALERTS:
        if call is None:
            raise Reject("bad_field:call_id", f"a {kind} alert must name its call")
        expected_id = alert_id == f"{kind}:{call}"
        shape = f"{kind}:<call_id>"
    elif kind == OUTAGE:
        if call is not None:
            raise Reject("bad_field:call_id", "a controller_outage alert has call_id null")
        prefix = f"{OUTAGE}:{portal}:"
        opened = alert_id[len(prefix):]
        expected_id = alert_id.startswith(prefix) and bool(_is_ts_wire(opened)) and ts_to_us(opened) is not None
        shape = "controller_outage:<portal_id>:<timestamp of the opening bypass>"
    else:
        expected_id = alert_id.startswith(kind + ":") and bool(_is_rule_id_tail(alert_id[len(kind) + 1:]))
        shape = f"{kind}:<1-192 characters of A-Z a-z 0-9 . _ : ->"
    if not expected_id:
        raise fail("alert_id", alert_id, shape)


_CHECKS = {"cdrs": (check_cdr, "call_id"), "alerts": (check_alert, "portal_id")}


def screen(table: str, key: bytes | None, value: bytes | None, *, check_key: bool) -> bytes:
    """The message's value in canonical JSON (what the sink then decodes), or :class:`Reject`.

    Canonical (re-serialised from the checked object) so that the decoder reads exactly
    what was checked: with a key given twice, JSON parsers disagree on which copy counts.
    ``check_key``: the Kafka key must be the ``call_id`` (cdrs) or ``portal_id`` (alerts).
    """
    check, key_field = _CHECKS[table]
    if value is None:
        raise Reject("not_json", "null value (tombstone)")
    if len(value) > MAX_VALUE_BYTES:
        raise Reject("too_large", f"value of {len(value)} bytes is over {MAX_VALUE_BYTES}")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Reject("not_json", f"not JSON: {exc}") from None
    if type(doc) is not dict:
        raise Reject("not_object", f"the value must be a JSON object, got {show(doc)}")
    check(doc)
    if check_key and key != doc[key_field].encode():
        raise Reject("bad_key", f"the message key must be the {key_field} {doc[key_field]!r}, "
                                f"got {show(key)}")
    return orjson.dumps(doc)

