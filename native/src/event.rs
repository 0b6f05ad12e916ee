//! Contract v1 events, as `streams/domain/events.py` defines them (the fields the fold reads).

use crate::dec::Dec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Started,
    Requested,
    Replied,
    Bypassed,
    Offered,
    OfferMissed,
    Forwarded,
    Answered,
    Recording,
    Ended,
}

impl Kind {
    pub fn from_wire(name: &str) -> Option<Kind> {
        Some(match name {
            "call.started" => Kind::Started,
            "controller.requested" => Kind::Requested,
            "controller.replied" => Kind::Replied,
            "controller.bypassed" => Kind::Bypassed,
            "call.offered" => Kind::Offered,
            "call.offer_missed" => Kind::OfferMissed,
            "call.forwarded" => Kind::Forwarded,
            "call.answered" => Kind::Answered,
            "recording.stored" => Kind::Recording,
            "call.ended" => Kind::Ended,
            _ => return None,
        })
    }

    /// The contract's `source` for this type.
    pub fn source(self) -> &'static str {
        match self {
            Kind::Replied => "controller",
            _ => "voice",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Started {
        direction: String,
        line: String,
        from: String,
        to: String,
        line_number: Option<String>,
        shown_number: Option<String>,
        user_id: Option<String>,
        extranet: bool,
        record: bool,
    },
    Requested,
    Replied { result: String },
    Bypassed { reason: String, key_saved_at_us: i64 },
    Offered { attempt: i64 },
    OfferMissed,
    Forwarded { to: String },
    Answered { user_id: String },
    Recording { url: String, bytes: i64, seconds: Dec },
    Ended { cause: String, by: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub kind: Kind,
    pub call_id: String,
    pub portal_id: String,
    pub ts_us: i64,
    pub data: Data,
}
