//! The mobile citizen certificate (行動自然人憑證, TW FidO) runtime: MOI's SP API client built
//! from `[mobile_certificate]`, and what a pending sign-in keeps between the browser's polls.
//!
//! Nothing runs in the background: the waiting page polls `GET /.menshen/mobile/status`, and
//! each poll asks MOI at most once per [`menshen_twfido::client::MIN_POLL_INTERVAL`] for that
//! sign-in. A browser that gives up leaves nothing running; its pending entry expires with the
//! ticket.

use std::time::Duration;

use menshen_config::MobileCertificateConfig;
use menshen_twfido::{Client, Settings, SpKey, Ticket};
use serde::{Deserialize, Serialize};

/// The configured client.
pub struct Mobile {
    pub client: Client,
    pub time_limit: Duration,
}

impl Mobile {
    pub fn new(config: &MobileCertificateConfig) -> anyhow::Result<Mobile> {
        let mut settings = Settings::new(
            &config.api_url,
            &config.sp_service_id,
            SpKey::new(config.aes_key.0),
            config.time_limit,
        );
        settings.request_timeout = config.request_timeout;
        let client =
            Client::new(settings).map_err(|e| anyhow::anyhow!("mobile_certificate: {e}"))?;
        Ok(Mobile {
            client,
            time_limit: config.time_limit,
        })
    }

    /// How long a pending sign-in is kept: the ticket's life and MOI's moment to record a
    /// last-second approval.
    pub fn pending_lifetime(&self) -> Duration {
        self.time_limit + menshen_twfido::client::DEADLINE_SLACK
    }
}

/// What a sign-in or binding started: the purpose, the browser it belongs to, the ticket,
/// the challenge the phone signs, and what the typed ID must match. The ID itself is not
/// kept: only its keyed hashes and last four characters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub purpose: Purpose,
    /// Bind: the account whose session started it.
    pub account_id: String,
    /// Login: where to go afterwards (a validated target).
    pub return_to: String,
    /// The keyed hashes of the typed ID (`Keyring::keyed_hashes`, primary first).
    pub id_hashes: Vec<String>,
    /// The typed ID's last four characters (checked against the certificate's attribute).
    pub id_last4: String,
    pub mode: Mode,
    /// The ticket as MOI sent it (the QR code shows it) and its parts.
    pub sp_ticket: String,
    pub transaction_id: String,
    pub sp_ticket_id: String,
    /// The hashed ID MOI's ticket announced; the result must carry the same.
    pub ticket_hashed_id: Option<String>,
    /// The exact bytes the phone must sign, base64.
    pub tbs: String,
    /// Unix seconds: when polling stops.
    pub deadline: u64,
    /// The last poll could not reach MOI (at the deadline this is "unavailable", not
    /// "expired").
    pub last_poll_failed: bool,
}

impl Pending {
    /// The ticket for ATH-02, rebuilt from what was kept.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            raw: self.sp_ticket.clone(),
            transaction_id: self.transaction_id.clone(),
            sp_ticket_id: self.sp_ticket_id.clone(),
            expires_at_ms: None,
            hashed_id_num: self.ticket_hashed_id.clone(),
            digest_matches: true,
            payload: serde_json::Value::Null,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Login,
    Bind,
}

impl Purpose {
    pub fn word(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Bind => "bind",
        }
    }

    pub fn parse(text: &str) -> Option<Purpose> {
        match text {
            "login" => Some(Purpose::Login),
            "bind" => Some(Purpose::Bind),
            _ => None,
        }
    }
}

/// How the person approves: a push to the bound phone, or scanning a QR code in the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Push,
    Qr,
}

impl Mode {
    pub fn parse(text: Option<&str>) -> Option<Mode> {
        match text.unwrap_or("push") {
            "" | "push" => Some(Mode::Push),
            "qr" => Some(Mode::Qr),
            _ => None,
        }
    }
}

/// The keyed-hash context of national IDs in `mobile_bindings.id_hash`.
pub const ID_HASH_CONTEXT: &str = "mobile-certificate id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_purposes_parse_strictly() {
        assert_eq!(Mode::parse(None), Some(Mode::Push));
        assert_eq!(Mode::parse(Some("qr")), Some(Mode::Qr));
        assert_eq!(Mode::parse(Some("QR")), None);
        assert_eq!(Purpose::parse("bind"), Some(Purpose::Bind));
        assert_eq!(Purpose::parse("other"), None);
    }
}
