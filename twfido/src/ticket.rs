//! `sp_ticket`: `BASE64URL(JSON payload)` "." `BASE64URL(SHA-256(first segment))`. The ticket
//! is authenticated by the `idp_checksum` that covers it, not by its digest.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A decoded ticket. The raw string is what the QR code shows and what checksums cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The ticket exactly as MOI sent it.
    pub raw: String,
    /// The transaction the ticket belongs to; ATH-02 must be sent with it.
    pub transaction_id: String,
    /// What ATH-02 asks about.
    pub sp_ticket_id: String,
    /// When MOI stops accepting the ticket, in Unix milliseconds, when it says so as a
    /// number (sources disagree on the format; an RFC 3339 text is left to `payload`).
    pub expires_at_ms: Option<u64>,
    /// The hashed ID the ticket was issued for; the result must carry the same.
    pub hashed_id_num: Option<String>,
    /// Whether the second segment is the digest of the first. Informational: MOI's format
    /// is known from two sources only, and the checksum already authenticates the ticket.
    pub digest_matches: bool,
    /// The whole payload, for fields not modelled here.
    pub payload: Value,
}

/// Why a ticket could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is not base64url JSON")]
    Encoding,
    #[error("the ticket has no sp_ticket_id")]
    NoTicketId,
}

impl Ticket {
    /// Decodes `raw`. `fallback_transaction_id` (the one we sent) stands in when the payload
    /// carries none.
    pub fn decode(raw: &str, fallback_transaction_id: &str) -> Result<Ticket, TicketError> {
        // Base64url has no '.', so the first and the last dot agree on a well-formed ticket;
        // split on the first, as most sources do.
        let (payload_b64, digest_b64) = raw.split_once('.').unwrap_or((raw, ""));
        let payload_bytes = URL_SAFE_NO_PAD
            .decode(payload_b64.trim_end_matches('='))
            .map_err(|_| TicketError::Encoding)?;
        let payload: Value =
            serde_json::from_slice(&payload_bytes).map_err(|_| TicketError::Encoding)?;
        if !payload.is_object() {
            return Err(TicketError::Encoding);
        }
        let digest_matches = URL_SAFE_NO_PAD
            .decode(digest_b64.trim_end_matches('='))
            .is_ok_and(|d| d.as_slice() == Sha256::digest(payload_b64.as_bytes()).as_slice());
        let sp_ticket_id = text(&payload, "sp_ticket_id").ok_or(TicketError::NoTicketId)?;
        let transaction_id =
            text(&payload, "transaction_id").unwrap_or_else(|| fallback_transaction_id.to_owned());
        let expires_at_ms = match payload.get("expiration_time") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(Ticket {
            raw: raw.to_owned(),
            transaction_id,
            sp_ticket_id,
            expires_at_ms,
            hashed_id_num: text(&payload, "hashed_id_num"),
            digest_matches,
            payload,
        })
    }

    /// Builds a ticket string from a payload, as MOI does (for the stand-in and tests).
    pub fn encode(payload: &Value) -> String {
        let first = URL_SAFE_NO_PAD.encode(payload.to_string());
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(first.as_bytes()));
        format!("{first}.{digest}")
    }
}

/// A string field, or a number written as text (IDs may come either way).
fn text(payload: &Value, key: &str) -> Option<String> {
    match payload.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tickets_decode() {
        let payload = json!({
            "transaction_id": "t-1", "sp_ticket_id": "st-9", "op_code": "SIGN",
            "op_mode": "I-SCAN", "expiration_time": 1_790_000_000_000u64,
            "hashed_id_num": "abc", "version": "1.0",
        });
        let raw = Ticket::encode(&payload);
        assert!(!raw.contains('='));
        let ticket = Ticket::decode(&raw, "ours").unwrap();
        assert_eq!(ticket.raw, raw);
        assert_eq!(ticket.transaction_id, "t-1");
        assert_eq!(ticket.sp_ticket_id, "st-9");
        assert_eq!(ticket.expires_at_ms, Some(1_790_000_000_000));
        assert_eq!(ticket.hashed_id_num.as_deref(), Some("abc"));
        assert!(ticket.digest_matches);
    }

    #[test]
    fn tolerant_of_what_sources_disagree_on() {
        // Expiry as text, no transaction ID, a wrong digest: still a ticket.
        let payload = json!({"sp_ticket_id": 42, "expiration_time": "1790000000000"});
        let first = URL_SAFE_NO_PAD.encode(payload.to_string());
        let ticket = Ticket::decode(&format!("{first}.AAAA"), "ours").unwrap();
        assert_eq!(ticket.transaction_id, "ours");
        assert_eq!(ticket.sp_ticket_id, "42");
        assert_eq!(ticket.expires_at_ms, Some(1_790_000_000_000));
        assert!(!ticket.digest_matches);
        let rfc = json!({"sp_ticket_id": "x", "expiration_time": "2026-12-02T03:00:00Z"});
        assert_eq!(
            Ticket::decode(&Ticket::encode(&rfc), "t")
                .unwrap()
                .expires_at_ms,
            None
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(Ticket::decode("", "t"), Err(TicketError::Encoding));
        assert_eq!(Ticket::decode("!!!.x", "t"), Err(TicketError::Encoding));
        let array = URL_SAFE_NO_PAD.encode("[1]");
        assert_eq!(Ticket::decode(&array, "t"), Err(TicketError::Encoding));
        let no_id = Ticket::encode(&json!({"transaction_id": "t"}));
        assert_eq!(Ticket::decode(&no_id, "t"), Err(TicketError::NoTicketId));
    }
}
