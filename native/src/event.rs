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

    /// The wire name of the type (the inverse of `from_wire`).
    pub fn wire_name(self) -> &'static str {
        match self {
            Kind::Started => "call.started",
            Kind::Requested => "controller.requested",
            Kind::Replied => "controller.replied",
            Kind::Bypassed => "controller.bypassed",
            Kind::Offered => "call.offered",
            Kind::OfferMissed => "call.offer_missed",
            Kind::Forwarded => "call.forwarded",
            Kind::Answered => "call.answered",
            Kind::Recording => "recording.stored",
            Kind::Ended => "call.ended",
        }
    }

    /// The contract's `source` for this type (streams/domain/shared.toml).
    pub fn source(self) -> &'static str {
        crate::shared::source_of(self.wire_name()).expect("every type is declared")
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
