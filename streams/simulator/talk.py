"""Ringing, talking and recording: the part every kind of call shares.

Talk time is heavy-tailed: 15 % of answered calls are a few seconds (wrong
number, call back later), the rest log-normal with a median of ~74 s, so about
2 % last over ten minutes; capped at 3 h.

Recordings (when the portal records and the call was answered) are stored
1-20 s after the call ends, or, for 15 % of them, 2-60 min later (the
recording store is a queue). Sizes follow the audio: both formats carry
16,000 bytes per second of audio (mp3 at 128 kbit/s; wav at 8 kHz, 16-bit
mono) plus a header (128-byte ID3v1 tag for mp3, 44-byte RIFF header for wav).
``seconds`` is the talk time less the 0-0.4 s it takes the recorder to start.
A few long calls are stored as two files.
"""

from __future__ import annotations

import random

from streams.simulator import call as o
from streams.simulator.call import Call
from streams.simulator.stamps import day_path, ms_us

BYTES_PER_MS = 16  # 16,000 bytes per second of audio, both formats
HEADER_BYTES = {"mp3": 128, "wav": 44}
RECORDING_HOST = "https://rec.example.net"
MAX_TALK_S = 3 * 3600.0


def talk_us(rng: random.Random) -> int:
    """A talk time, microseconds (whole milliseconds)."""
    if rng.random() < 0.15:
        return ms_us(rng.uniform(1.0, 10.0))
    return ms_us(min(MAX_TALK_S, rng.lognormvariate(4.3, 1.0)))


def ring_out(rng: random.Random, call: Call, t_us: int, user: str) -> None:
    """The far end rings from ``t_us``: answered (by ``user``), or one of the ways it is not."""
    roll = rng.random()
    if roll < 0.62:
        converse(rng, call, t_us + ms_us(rng.uniform(3.0, 25.0)), user)
    elif roll < 0.76:
        call.end(t_us + ms_us(rng.uniform(30.0, 60.0)), o.NO_ANSWER)
    elif roll < 0.83:
        call.end(t_us + ms_us(rng.uniform(3.0, 25.0)), o.CALLER_GAVE_UP)
    elif roll < 0.91:
        call.end(t_us + ms_us(rng.uniform(1.0, 4.0)), o.BUSY)
    elif roll < 0.96:
        call.end(t_us + ms_us(rng.uniform(3.0, 15.0)), o.REJECTED)
    else:
        call.end(t_us + ms_us(rng.uniform(0.3, 5.0)), o.FAILED)


def converse(rng: random.Random, call: Call, answered_us: int, user: str) -> None:
    """``user`` answers at ``answered_us``; they talk; someone hangs up; the recording is stored."""
    call.answer(answered_us, user)
    ended_us = answered_us + talk_us(rng)
    call.end(ended_us, o.ANSWERED_BY_CALLER if rng.random() < 0.5 else o.ANSWERED_BY_CALLEE)
    lost = call.portal.loses_recordings
    # No draw when nothing is ever lost: a seed's traffic stays what it was before the knob.
    if call.record and not (lost and rng.random() < lost):
        store_recordings(rng, call, answered_us, ended_us)


def store_recordings(rng: random.Random, call: Call, answered_us: int, ended_us: int) -> None:
    """Emit ``recording.stored`` for the call's audio: one file, or two for some long calls."""
    audio_ms = max(0, (ended_us - answered_us) // 1000 - rng.randrange(0, 400))
    parts = [audio_ms]
    if audio_ms > 120_000 and rng.random() < 0.05:
        first = rng.randrange(30_000, audio_ms - 30_000)
        parts = [first, audio_ms - first]
    if rng.random() < 0.85:
        stored_us = ended_us + ms_us(rng.uniform(1.0, 20.0))
    else:
        stored_us = ended_us + ms_us(rng.uniform(120.0, 3600.0))
    portal = call.portal
    fmt = portal.rec_format
    folder = f"{RECORDING_HOST}/{portal.portal_id}/{day_path(call.started_us)}/{call.call_id}"
    for number, part_ms in enumerate(parts, 1):
        size = part_ms * BYTES_PER_MS + HEADER_BYTES[fmt]
        call.recordings.append((size, part_ms))
        call.voice("recording.stored", stored_us + number * 1000 * rng.randrange(50, 900), {
            "url": f"{folder}-{number}.{fmt}", "bytes": size, "seconds": part_ms / 1000, "format": fmt,
        })
