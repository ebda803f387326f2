//! The four SP API calls, server to server, and the polling driver. Every request carries a
//! fresh `sp_checksum`; every successful answer must carry an `idp_checksum` that opens
//! under our key, or it is refused.
//!
//! Business errors (a non-zero `error_code`) are taken as they come: the sources show none
//! with an `idp_checksum`, and a forged refusal can only end a sign-in, which anyone on the
//! path can do anyway. Nothing is ever granted on an answer whose checksum did not open.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::challenge::Challenge;
use crate::checksum::{self, SpKey};
use crate::codes::{ErrorCode, Kind};
use crate::ticket::Ticket;

/// The spec recommends 4 s between ATH-02 queries; the driver never asks more often.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(4);
/// Added to `time_limit` for the polling deadline: the phone may approve in the last second
/// and MOI needs a moment to record it.
pub const DEADLINE_SLACK: Duration = Duration::from_secs(5);
/// No answer from MOI is legitimately larger than this (a certificate and a signature).
const MAX_BODY: usize = 256 * 1024;

/// How `time_limit` is written in the JSON: the spec's table says integer, several clients
/// send a string and report it working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeLimitFormat {
    #[default]
    Integer,
    Text,
}

/// What the client needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// MOI's SP API base without a trailing `/`, e.g. `https://fidoapi.moi.gov.tw`.
    pub api_url: String,
    pub sp_service_id: String,
    pub key: SpKey,
    /// The ticket's lifetime, whole seconds from 30 to 600.
    pub time_limit: Duration,
    pub time_limit_format: TimeLimitFormat,
    /// One request, connection included; a slow MOI is a down MOI for a person waiting.
    pub request_timeout: Duration,
    /// Requests in flight at once; more wait (up to `request_timeout`) and then fail `Busy`.
    pub max_concurrent: usize,
    /// Text shown in the app above the request.
    pub hint: String,
}

impl Settings {
    /// Settings with the defaults for everything the configuration does not name: a
    /// 10-second request timeout, 16 requests in flight, integer `time_limit`, and a hint
    /// naming the gateway.
    pub fn new(api_url: &str, sp_service_id: &str, key: SpKey, time_limit: Duration) -> Settings {
        Settings {
            api_url: api_url.trim_end_matches('/').to_owned(),
            sp_service_id: sp_service_id.to_owned(),
            key,
            time_limit,
            time_limit_format: TimeLimitFormat::Integer,
            request_timeout: Duration::from_secs(10),
            max_concurrent: 16,
            hint: "門神登入".to_owned(),
        }
    }
}

/// Something broke: the call could not give an answer that means anything.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("MOI's SP API cannot be reached: {0}")]
    Transport(String),
    #[error("MOI's SP API answered HTTP {0}")]
    Status(u16),
    #[error("too many requests to MOI's SP API are in flight")]
    Busy,
    #[error("MOI's SP API answer is malformed: {0}")]
    Malformed(&'static str),
    /// The answer's `idp_checksum` is missing or does not open: forged or corrupted. Final.
    #[error("MOI's SP API answer failed its idp_checksum")]
    Checksum,
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
}

impl Error {
    /// Whether trying again may help: the network, MOI's gateway, or our own queue. A bad
    /// body is not retried.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) | Error::Busy => true,
            Error::Status(status) => *status >= 500 || *status == 429,
            Error::Malformed(_) | Error::Checksum | Error::Setup(_) => false,
        }
    }
}

/// ATH-01 and ATH-03: a ticket, or MOI's reason for not issuing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketOutcome {
    Issued(Ticket),
    Refused(ErrorCode),
}

/// What the phone sent back through MOI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub hashed_id_num: String,
    /// The bare PKCS#1 v1.5 signature (decoded from base64).
    pub signature: Vec<u8>,
    /// The signer's certificate, DER; not covered by `idp_checksum`, so it must verify the
    /// signature before anything trusts it.
    pub certificate: Option<Vec<u8>>,
}

/// ATH-02 (one call) or the polling driver (final).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultOutcome {
    /// Not finished yet (never returned by the driver).
    Pending,
    Done(Signed),
    Declined(ErrorCode),
    /// The ticket expired at MOI, or (`None`) the driver's deadline passed.
    Expired(Option<ErrorCode>),
    Used(ErrorCode),
    UnknownTicket(ErrorCode),
    UnknownId(ErrorCode),
    NoDevice(ErrorCode),
    /// MOI refused our request: a mistake or misconfiguration on our side.
    Rejected(ErrorCode),
    /// Maintenance or trouble at MOI.
    Unavailable(ErrorCode),
    Other(ErrorCode),
}

impl ResultOutcome {
    fn from_code(code: ErrorCode) -> ResultOutcome {
        match code.kind {
            Kind::Pending => ResultOutcome::Pending,
            Kind::Declined => ResultOutcome::Declined(code),
            Kind::Expired => ResultOutcome::Expired(Some(code)),
            Kind::Used => ResultOutcome::Used(code),
            Kind::UnknownTicket => ResultOutcome::UnknownTicket(code),
            Kind::UnknownId => ResultOutcome::UnknownId(code),
            Kind::NoDevice => ResultOutcome::NoDevice(code),
            Kind::Rejected => ResultOutcome::Rejected(code),
            Kind::Unavailable => ResultOutcome::Unavailable(code),
            Kind::Success | Kind::Other => ResultOutcome::Other(code),
        }
    }
}

/// LF-01: whether an ID can use the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceOutcome {
    Status { is_fido: bool, is_mcert_sign: bool },
    Refused(ErrorCode),
}

/// The SP API client. Cheap to clone; clones share the connection pool and the bound on
/// requests in flight.
#[derive(Debug, Clone)]
pub struct Client {
    settings: Arc<Settings>,
    http: reqwest::Client,
    permits: Arc<Semaphore>,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.request_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| Error::Setup(e.to_string()))?;
        let permits = Arc::new(Semaphore::new(settings.max_concurrent.max(1)));
        Ok(Client {
            settings: Arc::new(settings),
            http,
            permits,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// When the driver stops polling a ticket issued at `issued`.
    pub fn deadline(&self, issued: Instant) -> Instant {
        issued + self.settings.time_limit + DEADLINE_SLACK
    }

    /// ATH-01 with `op_mode=I-SCAN`: a ticket whose raw text the QR code shows.
    pub async fn get_sp_ticket(
        &self,
        id_num: &str,
        challenge: &Challenge,
    ) -> Result<TicketOutcome, Error> {
        let s = &self.settings;
        let txn = new_transaction_id();
        let (op_code, op_mode) = ("SIGN", "I-SCAN");
        let sp_checksum = checksum::seal(
            &s.key,
            &[
                &txn,
                &s.sp_service_id,
                id_num,
                op_code,
                op_mode,
                &s.hint,
                challenge.sign_data(),
            ],
        );
        let mut body = self.sign_request(&txn, sp_checksum, id_num, challenge);
        body.insert("op_mode".into(), json!(op_mode));
        self.ticket_call("getSpTicket", &txn, body).await
    }

    /// ATH-03: a prompt on the phone(s) bound to `id_num`. No `op_mode` (MOI rejects it on
    /// push); `device` (an alias) is left out entirely when `None`.
    pub async fn request_ath_or_sign_push(
        &self,
        id_num: &str,
        challenge: &Challenge,
        device: Option<&str>,
    ) -> Result<TicketOutcome, Error> {
        let s = &self.settings;
        let txn = new_transaction_id();
        let op_code = "SIGN";
        let sp_checksum = checksum::seal(
            &s.key,
            &[
                &txn,
                &s.sp_service_id,
                id_num,
                device.unwrap_or(""),
                op_code,
                &s.hint,
                challenge.sign_data(),
            ],
        );
        let mut body = self.sign_request(&txn, sp_checksum, id_num, challenge);
        if let Some(device) = device {
            body.insert("device_user_def_desc".into(), json!(device));
        }
        self.ticket_call("requestAthOrSignPush", &txn, body).await
    }

    /// ATH-02, once. Sent with the ticket's own transaction ID, as MOI requires.
    pub async fn get_ath_or_sign_result(&self, ticket: &Ticket) -> Result<ResultOutcome, Error> {
        let s = &self.settings;
        let txn = &ticket.transaction_id;
        let sp_checksum = checksum::seal(&s.key, &[txn, &s.sp_service_id, &ticket.sp_ticket_id]);
        let body = json!({
            "transaction_id": txn,
            "sp_service_id": s.sp_service_id,
            "sp_checksum": sp_checksum,
            "sp_ticket_id": ticket.sp_ticket_id,
        });
        let answer = self.call("getAthOrSignResult", body).await?;
        let code = answer.code()?;
        if !code.is_success() {
            return Ok(ResultOutcome::from_code(code));
        }
        let hashed_id_num = answer.text("hashed_id_num");
        let signed_response = answer.text("signed_response");
        answer.verify(&s.key, &[txn, &code.raw, &hashed_id_num, &signed_response])?;
        if signed_response.is_empty() {
            return Err(Error::Malformed("no signed_response"));
        }
        let signature = decode_base64(&signed_response)
            .ok_or(Error::Malformed("signed_response is not base64"))?;
        let certificate = match answer.text("cert") {
            c if c.is_empty() => None,
            c => Some(decode_base64(&c).ok_or(Error::Malformed("cert is not base64"))?),
        };
        Ok(ResultOutcome::Done(Signed {
            hashed_id_num,
            signature,
            certificate,
        }))
    }

    /// LF-01: whether `id_num` has a bound device (`is_fido`) and a usable certificate.
    pub async fn check_device_status(&self, id_num: &str) -> Result<DeviceOutcome, Error> {
        let s = &self.settings;
        let txn = new_transaction_id();
        let sp_checksum = checksum::seal(&s.key, &[&txn, &s.sp_service_id, id_num]);
        let body = json!({
            "transaction_id": txn,
            "sp_service_id": s.sp_service_id,
            "sp_checksum": sp_checksum,
            "id_num": id_num,
        });
        let answer = self.call("checkDeviceStatus", body).await?;
        let code = answer.code()?;
        if !code.is_success() {
            return Ok(DeviceOutcome::Refused(code));
        }
        let is_fido = answer.text("is_fido");
        let is_mcert_sign = answer.text("is_mcert_sign");
        answer.verify(&s.key, &[&txn, &code.raw, &is_fido, &is_mcert_sign])?;
        Ok(DeviceOutcome::Status {
            is_fido: is_fido.eq_ignore_ascii_case("Y"),
            is_mcert_sign: is_mcert_sign.eq_ignore_ascii_case("Y"),
        })
    }

    /// Polls ATH-02 every `interval` (at least [`MIN_POLL_INTERVAL`]) until a final answer
    /// or `deadline`. Transport trouble is retried until the deadline (a backgrounded app
    /// makes the first polls fail); business codes are final, and so is a bad body. At the
    /// deadline: `Expired(None)`, or the last transport error if the last poll failed.
    pub async fn wait_for_result(
        &self,
        ticket: &Ticket,
        deadline: Instant,
        interval: Duration,
    ) -> Result<ResultOutcome, Error> {
        let interval = interval.max(MIN_POLL_INTERVAL);
        let mut last_error = None;
        loop {
            let next = Instant::now() + interval;
            if next > deadline {
                break;
            }
            tokio::time::sleep_until(next).await;
            match tokio::time::timeout_at(deadline, self.get_ath_or_sign_result(ticket)).await {
                Err(_) => break,
                Ok(Ok(ResultOutcome::Pending)) => last_error = None,
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(e)) if e.is_transient() => {
                    tracing::debug!(error = %e, "TW FidO result poll failed; will retry");
                    last_error = Some(e);
                }
                Ok(Err(e)) => return Err(e),
            }
        }
        match last_error {
            Some(e) => Err(e),
            None => Ok(ResultOutcome::Expired(None)),
        }
    }

    /// The fields ATH-01 and ATH-03 share: SIGN over the challenge, PKCS#1 with SHA-256.
    fn sign_request(
        &self,
        txn: &str,
        sp_checksum: String,
        id_num: &str,
        challenge: &Challenge,
    ) -> Map<String, Value> {
        let s = &self.settings;
        let seconds = s.time_limit.as_secs();
        let time_limit = match s.time_limit_format {
            TimeLimitFormat::Integer => json!(seconds),
            TimeLimitFormat::Text => json!(seconds.to_string()),
        };
        let mut body = Map::new();
        body.insert("transaction_id".into(), json!(txn));
        body.insert("sp_service_id".into(), json!(s.sp_service_id));
        body.insert("sp_checksum".into(), json!(sp_checksum));
        body.insert("id_num".into(), json!(id_num));
        body.insert("op_code".into(), json!("SIGN"));
        body.insert("hint".into(), json!(s.hint));
        body.insert("time_limit".into(), time_limit);
        body.insert(
            "sign_info".into(),
            json!({
                "sign_type": "PKCS#1",
                "tbs_encoding": "base64",
                "hash_algorithm": "SHA256",
                "sign_data": challenge.sign_data(),
            }),
        );
        body
    }

    async fn ticket_call(
        &self,
        endpoint: &str,
        txn: &str,
        body: Map<String, Value>,
    ) -> Result<TicketOutcome, Error> {
        let answer = self.call(endpoint, Value::Object(body)).await?;
        let code = answer.code()?;
        if !code.is_success() {
            return Ok(TicketOutcome::Refused(code));
        }
        let raw = answer.text("sp_ticket");
        // Our transaction ID, not one echoed by the answer.
        answer.verify(&self.settings.key, &[txn, &code.raw, &raw])?;
        let ticket = Ticket::decode(&raw, txn).map_err(|_| Error::Malformed("sp_ticket"))?;
        Ok(TicketOutcome::Issued(ticket))
    }

    async fn call(&self, endpoint: &str, body: Value) -> Result<Answer, Error> {
        let s = &self.settings;
        let _permit = tokio::time::timeout(s.request_timeout, self.permits.acquire())
            .await
            .map_err(|_| Error::Busy)?
            .map_err(|_| Error::Busy)?;
        let url = format!("{}/moise/sp/{endpoint}", s.api_url);
        let mut response = self
            .http
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Error::Transport(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Status(status.as_u16()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::Transport(e.without_url().to_string()))?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(Error::Malformed("the answer is too large"));
            }
            bytes.extend_from_slice(&chunk);
        }
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(Answer(map)),
            _ => Err(Error::Malformed("the answer is not a JSON object")),
        }
    }
}

/// An answer's JSON: the `{error_code, error_message, result{...}}` envelope, or the flat
/// shape one source expects (fields beside `error_code`).
struct Answer(Map<String, Value>);

impl Answer {
    fn code(&self) -> Result<ErrorCode, Error> {
        ErrorCode::from_json(self.0.get("error_code")).ok_or(Error::Malformed("no error_code"))
    }

    /// A field from `result`, else from the top level; "" when absent (as in the checksum
    /// payloads). Numbers and booleans are written as text.
    fn text(&self, key: &str) -> String {
        let value = self
            .0
            .get("result")
            .and_then(|r| r.get(key))
            .or_else(|| self.0.get(key));
        match value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    }

    fn verify(&self, key: &SpKey, fields: &[&str]) -> Result<(), Error> {
        let idp_checksum = self.text("idp_checksum");
        if checksum::verify(key, fields, &idp_checksum) {
            Ok(())
        } else {
            Err(Error::Checksum)
        }
    }
}

/// Every call but ATH-02 gets a new one; MOI refuses a reused ID (`TXNLOG_INS_ERR`).
fn new_transaction_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Base64, standard or URL alphabet, padded or not, ignoring line breaks.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let unpadded = cleaned.trim_end_matches('=');
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    standard
        .decode(unpadded)
        .or_else(|_| url.decode(unpadded))
        .ok()
        .or_else(|| STANDARD.decode(&cleaned).ok())
        .or_else(|| URL_SAFE.decode(&cleaned).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_are_fresh_uuids() {
        let a = new_transaction_id();
        assert_eq!(a.len(), 36);
        assert_ne!(a, new_transaction_id());
    }

    #[test]
    fn base64_in_either_alphabet() {
        assert_eq!(decode_base64("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_base64("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_base64("+/8\n").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_base64("*").is_none());
    }

    #[test]
    fn outcomes_follow_the_codes() {
        let outcome = |raw: &str| ResultOutcome::from_code(ErrorCode::parse(raw));
        assert_eq!(
            outcome("SP-API-ATH-02-SPTKTID_TXNLOG_NF"),
            ResultOutcome::Pending
        );
        assert!(matches!(
            outcome("SP-API-ATH-02-APP_USER_CANCEL"),
            ResultOutcome::Declined(_)
        ));
        assert!(matches!(
            outcome("SP-API-ATH-02-SPTKT_OVD"),
            ResultOutcome::Expired(Some(_))
        ));
        assert!(matches!(
            outcome("SP-API-ATH-02-SPTKTID_SPTKT_RDM"),
            ResultOutcome::Used(_)
        ));
        assert!(matches!(
            outcome("SP-API-ATH-02-SPTKTID_SPTKT_NF"),
            ResultOutcome::UnknownTicket(_)
        ));
        assert!(matches!(
            outcome("SP-API-ATH-02-INV_SP_CHECKSUM"),
            ResultOutcome::Rejected(_)
        ));
        assert!(matches!(
            outcome("SP-API-ATH-02-DB_ERR"),
            ResultOutcome::Unavailable(_)
        ));
    }

    #[test]
    fn only_transport_trouble_is_retried() {
        assert!(Error::Transport("refused".into()).is_transient());
        assert!(Error::Status(502).is_transient());
        assert!(Error::Busy.is_transient());
        assert!(!Error::Status(400).is_transient());
        assert!(!Error::Checksum.is_transient());
        assert!(!Error::Malformed("x").is_transient());
    }

    #[test]
    fn answers_read_both_shapes() {
        let envelope = Answer(
            serde_json::from_str(r#"{"error_code":"0","result":{"sp_ticket":"a.b","n":5}}"#)
                .unwrap(),
        );
        assert_eq!(envelope.text("sp_ticket"), "a.b");
        assert_eq!(envelope.text("n"), "5");
        assert_eq!(envelope.text("missing"), "");
        let flat = Answer(serde_json::from_str(r#"{"error_code":0,"sp_ticket":"a.b"}"#).unwrap());
        assert_eq!(flat.text("sp_ticket"), "a.b");
        assert!(flat.code().unwrap().is_success());
    }
}
