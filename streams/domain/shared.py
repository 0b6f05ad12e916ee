"""What both cores share (generated from streams/domain/shared.toml by scripts/generate_shared.py: do not edit)."""

from __future__ import annotations

STATE_FORMAT = 3

MAX_CALL_EVENTS = 10_000
MIN_CALL_EVENTS = 100
CALL_EVENTS_CEILING = 20_000
MAX_RECORDING_URLS = 100
MAX_TEXT_CHARS = 2_048
MAX_OUTPUT_BYTES = 1_048_576
MAX_STATE_BYTES = 8_388_608
MAX_AHEAD_US = 86_400_000_000
EARLIEST_TS_US = 946_684_800_000_000

SOURCE_OF_TYPE: dict[str, str] = {
    'call.started': 'voice',
    'controller.requested': 'voice',
    'controller.replied': 'controller',
    'controller.bypassed': 'voice',
    'call.offered': 'voice',
    'call.offer_missed': 'voice',
    'call.forwarded': 'voice',
    'call.answered': 'voice',
    'recording.stored': 'voice',
    'call.ended': 'voice',
}

DATA_FIELDS: dict[str, tuple[str, ...]] = {
    'call.started': ('direction', 'line', 'from', 'to', 'line_number', 'shown_number', 'user_id', 'extranet', 'record'),
    'controller.requested': (),
    'controller.replied': ('result', 'config_id'),
    'controller.bypassed': ('reason', 'key_saved_at'),
    'call.offered': ('user_id', 'attempt', 'rule', 'rings'),
    'call.offer_missed': ('user_id', 'attempt'),
    'call.forwarded': ('to', 'reason'),
    'call.answered': ('user_id',),
    'recording.stored': ('url', 'bytes', 'seconds', 'format'),
    'call.ended': ('cause', 'by'),
}

DIRECTIONS = frozenset(('inbound', 'outbound', 'internal'))
LINES = frozenset(('rented', 'operator', 'sip', 'internal'))
CONTROLLER_RESULTS = frozenset(('ok', 'license_error', 'config_not_found'))
BYPASS_REASONS = frozenset(('timeout', 'unreachable', 'error'))
OFFER_RULES = frozenset(('employee', 'crm_responsible', 'queue'))
FORWARD_REASONS = frozenset(('no_answer', 'busy', 'rule'))
RECORDING_FORMATS = frozenset(('mp3', 'wav'))
END_CAUSES = frozenset(('normal', 'busy', 'no_answer', 'rejected', 'failed', 'license_error', 'config_not_found', 'forbidden'))
END_BY = frozenset(('caller', 'callee', 'system'))
PAID_LINES = frozenset(('rented', 'operator', 'sip'))

STATUS_BY_CAUSE: dict[str, str] = {
    'busy': 'busy',
    'no_answer': 'missed',
    'normal': 'missed',
    'rejected': 'rejected',
    'forbidden': 'rejected',
    'failed': 'failed',
    'license_error': 'failed',
    'config_not_found': 'failed',
}

EXPIRED_KEY = 'expired_at'
SIGNAL_KEY = 'signal'
ENDED_SEEN_KEY = 'ended_seen_at'
RECORDING_CHECKED_KEY = 'recording_checked'
RETRACTED_KEY = 'retracted'
