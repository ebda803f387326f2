//! `twfido-standin`: a stand-in for the Ministry of the Interior's TW FidO SP API (行動自然人
//! 憑證, `https://fidoapi.moi.gov.tw/moise/sp/...`) on loopback, faithful to
//! `TWFIDO-NOTES.md`, so the Rust suites and the browser tests can run the mobile flow.
//!
//! It generates a MOICA-shaped PKI ([`menshen_pki::testpki`], MOICA G3 under a GRCA-like
//! root), a certificate per test person, a random AES-256 key and a service ID, writes the
//! CA files, the CRLs (G3's and the root's) and `mobile-certificate.toml` (`[certificate]` and `[mobile_certificate]`)
//! into `--dir`, then serves the API and prints one line,
//! `twfido-standin listening on http://127.0.0.1:<PORT>`.
//!
//! # Layout
//! - [`Cli`] and `main`: wiring only.
//! - [`PEOPLE`], [`Person`], [`write_files`]: who is registered, their certificates, the files.
//! - [`Standin`]: the four endpoints (`ticket`, `result`, `device_status`) and the ticket
//!   state machine; every refusal is a [`Refusal`] turned into MOI's envelope in one place.
//! - [`route`]: paths to handlers, handlers to responses.
//!
//! # HTTP API
//! MOI's: `POST /moise/sp/{getSpTicket,requestAthOrSignPush,getAthOrSignResult,
//! checkDeviceStatus}` with JSON; always HTTP 200 with `{error_code, error_message,
//! result?}`, `error_code` `SP-API-<interface>-<CODE>` or `"0"`.
//! Test controls, JSON bodies, answered `{"ok":true}`:
//! - `POST /_standin/approve {"sp_ticket_id"}`, `/_standin/decline`, `/_standin/expire`:
//!   what the phone (or the clock) does to a ticket.
//! - `POST /_standin/certificate {"id_num","person"}`: results for `id_num` carry and are
//!   signed as `person`'s certificate from now on.
//! - `POST /_standin/report-id {"id_num","as"}`: results for `id_num` carry the hashed ID of
//!   `as` (a result for another ID).
//! - `POST /_standin/replay {"sp_ticket_id","from"}`: the ticket's result carries the signature
//!   made for the ticket `from` (a replayed result).
//! - `POST /_standin/break {"on":bool}`: answers carry an `idp_checksum` over wrong data.
//! - `POST /_standin/delay {"ms":n}`: every API answer waits this long (a slow MOI).
//! - `GET /_standin/state`: the requests seen (without checksums) and the tickets, oldest
//!   first.
//!
//! Every bound phone has the alias `我的手機`; a push naming another gets `DEV_DESC_MISMATCH`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use menshen_pki::testpki::{Generation, LeafOptions, TestPki};
use menshen_twfido::checksum::{self, SpKey};
use menshen_twfido::ticket::Ticket;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// Plays MOI's TW FidO SP API on loopback with generated test people.
#[derive(Debug, Parser)]
#[command(name = "twfido-standin", version)]
struct Cli {
    /// Directory for the CA files, the CRL and `mobile-certificate.toml` (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The service ID MOI "issued"; 20 digits like the real ones.
    #[arg(long, default_value = "20260000000000000001")]
    sp_service_id: String,
}

/// The alias every bound phone has (`device_user_def_desc` on push).
const DEVICE_ALIAS: &str = "我的手機";
/// Larger bodies are refused; MOI's requests are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;
/// `sign_data` longer than this: `SIGNDATA_LEN_LIMIT`.
const SIGN_DATA_LIMIT: usize = 1024;

/// A registered person of the stand-in.
struct Person {
    /// The name tests use for the certificate (`/_standin/certificate`).
    name: &'static str,
    id_num: &'static str,
    cn: &'static str,
    /// Whether a phone is bound (push works); QR works either way for a registered person.
    device: bool,
    serial: u64,
    /// Listed in the CRL.
    revoked: bool,
}

/// Everyone MOI knows here. Any other well-formed ID is `IDNUM_USERPROF_NF`.
const PEOPLE: &[Person] = &[
    Person {
        name: "default",
        id_num: "A123456789",
        cn: "王小明",
        device: true,
        serial: 0x2000_0001,
        revoked: false,
    },
    Person {
        name: "stranger",
        id_num: "B223456782",
        cn: "陳大文",
        device: true,
        serial: 0x2000_0002,
        revoked: false,
    },
    Person {
        name: "nodevice",
        id_num: "C123456781",
        cn: "林小華",
        device: false,
        serial: 0x2000_0003,
        revoked: false,
    },
    Person {
        name: "revoked",
        id_num: "D123456782",
        cn: "張志明",
        device: true,
        serial: 0x2000_0004,
        revoked: true,
    },
];

struct Holder {
    person: &'static Person,
    leaf: menshen_pki::testpki::TestLeaf,
}

fn holders(pki: &TestPki) -> Vec<Holder> {
    PEOPLE
        .iter()
        .map(|person| Holder {
            person,
            leaf: pki.leaf(LeafOptions {
                generation: Generation::G3,
                cn: person.cn.to_owned(),
                id_last4: person.id_num[6..].to_owned(),
                serial: person.serial,
                ..LeafOptions::default()
            }),
        })
        .collect()
}

/// Writes the PKI files and `mobile-certificate.toml` into `dir` (absolute).
fn write_files(
    dir: &Path,
    pki: &TestPki,
    holders: &[Holder],
    sp_service_id: &str,
    key: &[u8; 32],
    url: &str,
) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        path.to_str()
            .map(str::to_owned)
            .with_context(|| format!("{} is not UTF-8", path.display()))
    };
    let root = write("grca-g3.der", &pki.root_der)?;
    let g3 = write("moica-g3.der", &pki.ca_g3_der)?;
    let revoked = PEOPLE.iter().filter(|p| p.revoked).map(|p| p.serial);
    let crl = write("moica-g3.crl", &pki.crl(Generation::G3, revoked))?;
    // The root's list about the CA certificates: without it every card fails closed.
    let root_crl = write("grca-g3.crl", &pki.root_crl(std::iter::empty()))?;
    for holder in holders {
        write(
            &format!("mobile-{}.der", holder.person.name),
            &holder.leaf.certificate_der,
        )?;
    }
    let mut certificate = toml::Table::new();
    certificate.insert("trust_anchors".into(), vec![root].into());
    certificate.insert("intermediates".into(), vec![g3].into());
    certificate.insert("crls".into(), vec![crl, root_crl].into());
    let mut mobile = toml::Table::new();
    mobile.insert("api_url".into(), url.into());
    mobile.insert("sp_service_id".into(), sp_service_id.into());
    mobile.insert("aes_key".into(), URL_SAFE_NO_PAD.encode(key).into());
    let mut doc = toml::Table::new();
    doc.insert("certificate".into(), certificate.into());
    doc.insert("mobile_certificate".into(), mobile.into());
    let text = toml::to_string(&doc).context("encoding mobile-certificate.toml")?;
    write("mobile-certificate.toml", text.as_bytes())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Approved,
    Declined,
    /// Forced expiry (the clock also expires tickets).
    Expired,
    Redeemed,
}

struct TicketState {
    transaction_id: String,
    id_num: String,
    sign_data: String,
    /// Set by `/_standin/replay`: the data the result's signature covers instead.
    signs_for: Option<String>,
    /// Issue order (the state lists tickets oldest first).
    seq: usize,
    expires_at_ms: u64,
    phase: Phase,
}

#[derive(Default)]
struct State {
    transactions: HashSet<String>,
    tickets: HashMap<String, TicketState>,
    /// id_num → the person whose certificate results carry.
    swapped: HashMap<String, &'static str>,
    /// id_num → the ID whose hash results carry.
    reported_as: HashMap<String, String>,
    broken: bool,
    delay: Duration,
    seen: Vec<Value>,
}

struct Standin {
    sp_service_id: String,
    key: SpKey,
    holders: Vec<Holder>,
    state: Mutex<State>,
}

/// A refusal: the system code and MOI-like text.
struct Refusal(&'static str, &'static str);

impl Refusal {
    const CHECKSUM: Refusal = Refusal("INV_SP_CHECKSUM", "sp_checksum 驗證失敗");
    const SERVICE: Refusal = Refusal("SPSVCID_NF", "查無 SP 服務代碼");
    const ID_FORMAT: Refusal = Refusal("PM_IDN_FT_ERR", "身分證字號格式錯誤");
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn field(body: &Map<String, Value>, key: &str) -> String {
    match body.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `^[A-Z][0-9A-Z]{9}$`, as matters-web checks.
fn id_format_ok(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 10
        && b[0].is_ascii_uppercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// Stand-in's own choice: MOI's algorithm is undocumented.
fn hashed_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Standin {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn person(&self, id: &str) -> Option<&'static Person> {
        PEOPLE.iter().find(|p| p.id_num == id)
    }

    /// An `idp_checksum` over `fields`, or over wrong data when the test broke it.
    fn idp(&self, broken: bool, fields: &[&str]) -> String {
        if broken {
            checksum::seal(&self.key, &["broken"])
        } else {
            checksum::seal(&self.key, fields)
        }
    }

    /// ATH-01 (`push` false) and ATH-03 (`push` true).
    fn ticket(&self, body: &Map<String, Value>, push: bool) -> Result<Value, Refusal> {
        let txn = field(body, "transaction_id");
        let svc = field(body, "sp_service_id");
        let id = field(body, "id_num");
        let op_code = field(body, "op_code");
        let op_mode = field(body, "op_mode");
        let hint = field(body, "hint");
        let device = field(body, "device_user_def_desc");
        let sign_info = body.get("sign_info").and_then(Value::as_object);
        let sign_data = sign_info.map(|s| field(s, "sign_data")).unwrap_or_default();
        let given = field(body, "sp_checksum");
        let fields: Vec<&str> = if push {
            vec![&txn, &svc, &id, &device, &op_code, &hint, &sign_data]
        } else {
            vec![&txn, &svc, &id, &op_code, &op_mode, &hint, &sign_data]
        };
        if svc != self.sp_service_id {
            return Err(Refusal::SERVICE);
        }
        if !checksum::verify(&self.key, &fields, &given) {
            return Err(Refusal::CHECKSUM);
        }
        if push && body.contains_key("op_mode") {
            // backupTW: push requests with op_mode are rejected. The code is our guess.
            return Err(Refusal("SPTKT_PLD_FT_ERR", "推播不得帶 op_mode"));
        }
        if !push && !matches!(op_mode.as_str(), "I-SCAN" | "APP2APP" | "MWEB2APP") {
            return Err(Refusal("SPTKT_PLD_FT_ERR", "op_mode 錯誤"));
        }
        if !matches!(op_code.as_str(), "ATH" | "SIGN") {
            return Err(Refusal("SPTKT_PLD_FT_ERR", "op_code 錯誤"));
        }
        if txn.is_empty() || txn.len() > 100 {
            return Err(Refusal("SPTKT_PLD_FT_ERR", "transaction_id 錯誤"));
        }
        if !id_format_ok(&id) {
            return Err(Refusal::ID_FORMAT);
        }
        let seconds = match body.get("time_limit") {
            None => 600,
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or(Refusal("SPTKT_TIME_FT_ERR", "time_limit 格式錯誤"))?,
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| Refusal("SPTKT_TIME_FT_ERR", "time_limit 格式錯誤"))?,
            Some(_) => return Err(Refusal("SPTKT_TIME_FT_ERR", "time_limit 格式錯誤")),
        };
        if !(30..=600).contains(&seconds) {
            return Err(Refusal("SPTKT_TIME_ORV", "time_limit 超出範圍"));
        }
        if op_code == "SIGN" {
            let sign_info = sign_info.ok_or(Refusal("SPTKT_PLD_FT_ERR", "缺少 sign_info"))?;
            if sign_data.len() > SIGN_DATA_LIMIT {
                return Err(Refusal("SIGNDATA_LEN_LIMIT", "sign_data 超過長度"));
            }
            if field(sign_info, "sign_type") != "PKCS#1"
                || field(sign_info, "tbs_encoding") != "base64"
                || STANDARD.decode(&sign_data).is_err()
            {
                // Only what Menshen sends is modelled; say so rather than sign garbage.
                return Err(Refusal(
                    "SPTKT_PLD_FT_ERR",
                    "stand-in: only PKCS#1 over base64",
                ));
            }
        }
        let person = self
            .person(&id)
            .ok_or(Refusal("IDNUM_USERPROF_NF", "查無使用者"))?;
        if push && !person.device {
            return Err(Refusal("IDNUM_DEVPROF_NF", "查無裝置"));
        }
        if push && body.contains_key("device_user_def_desc") && device != DEVICE_ALIAS {
            return Err(Refusal("DEV_DESC_MISMATCH", "查無裝置別名"));
        }
        let mut state = self.lock();
        if !state.transactions.insert(txn.clone()) {
            return Err(Refusal("TXNLOG_INS_ERR", "交易紀錄新增失敗"));
        }
        let mut ticket_id = [0u8; 16];
        rand::fill(&mut ticket_id[..]);
        let sp_ticket_id = hex::encode(ticket_id);
        let expires_at_ms = now_ms() + seconds * 1000;
        let sp_ticket = Ticket::encode(&json!({
            "transaction_id": txn,
            "sp_ticket_id": sp_ticket_id,
            "op_code": op_code,
            "op_mode": if push { "PUSH" } else { op_mode.as_str() },
            "sp_service_id": svc,
            "sp_name": "門神測試",
            "hint": hint,
            "expiration_time": expires_at_ms,
            "hashed_id_num": hashed_id(&id),
            "version": "1.0",
        }));
        let seq = state.tickets.len();
        state.tickets.insert(
            sp_ticket_id,
            TicketState {
                transaction_id: txn.clone(),
                id_num: id,
                sign_data,
                signs_for: None,
                seq,
                expires_at_ms,
                phase: Phase::Pending,
            },
        );
        let idp_checksum = self.idp(state.broken, &[&txn, "0", &sp_ticket]);
        Ok(json!({ "sp_ticket": sp_ticket, "idp_checksum": idp_checksum }))
    }

    /// ATH-02.
    fn result(&self, body: &Map<String, Value>) -> Result<Value, Refusal> {
        let txn = field(body, "transaction_id");
        let svc = field(body, "sp_service_id");
        let ticket_id = field(body, "sp_ticket_id");
        if svc != self.sp_service_id {
            return Err(Refusal::SERVICE);
        }
        if !checksum::verify(
            &self.key,
            &[&txn, &svc, &ticket_id],
            &field(body, "sp_checksum"),
        ) {
            return Err(Refusal::CHECKSUM);
        }
        let mut state = self.lock();
        let broken = state.broken;
        let swapped = state.swapped.clone();
        let reported_as = state.reported_as.clone();
        let ticket = state
            .tickets
            .get_mut(&ticket_id)
            .filter(|t| t.transaction_id == txn)
            .ok_or(Refusal("SPTKTID_SPTKT_NF", "查無 sp_ticket"))?;
        if ticket.phase == Phase::Redeemed {
            return Err(Refusal("SPTKTID_SPTKT_RDM", "sp_ticket 已使用"));
        }
        if ticket.phase == Phase::Expired || now_ms() > ticket.expires_at_ms {
            return Err(Refusal("SPTKT_OVD", "sp_ticket 已逾期"));
        }
        match ticket.phase {
            Phase::Pending => {
                return Err(Refusal(
                    "SPTKTID_TXNLOG_NF",
                    "認證/簽章尚未完成，請稍後再試",
                ));
            }
            Phase::Declined => return Err(Refusal("APP_USER_CANCEL", "使用者取消")),
            _ => {}
        }
        let name = swapped
            .get(&ticket.id_num)
            .copied()
            .unwrap_or_else(|| self.person(&ticket.id_num).map_or("default", |p| p.name));
        let holder = self
            .holders
            .iter()
            .find(|h| h.person.name == name)
            .ok_or(Refusal("UNDEFINED", "stand-in: no such person"))?;
        let tbs = STANDARD
            .decode(ticket.signs_for.as_ref().unwrap_or(&ticket.sign_data))
            .map_err(|_| Refusal("APP_DECODE_FAIL", "解碼失敗"))?;
        let signed_response = STANDARD.encode(holder.leaf.sign_pkcs1(&tbs));
        let hashed = hashed_id(reported_as.get(&ticket.id_num).unwrap_or(&ticket.id_num));
        ticket.phase = Phase::Redeemed;
        let idp_checksum = self.idp(broken, &[&txn, "0", &hashed, &signed_response]);
        Ok(json!({
            "hashed_id_num": hashed,
            "signed_response": signed_response,
            "cert": STANDARD.encode(&holder.leaf.certificate_der),
            "idp_checksum": idp_checksum,
        }))
    }

    /// LF-01.
    fn device_status(&self, body: &Map<String, Value>) -> Result<Value, Refusal> {
        let txn = field(body, "transaction_id");
        let svc = field(body, "sp_service_id");
        let id = field(body, "id_num");
        if svc != self.sp_service_id {
            return Err(Refusal::SERVICE);
        }
        if !checksum::verify(&self.key, &[&txn, &svc, &id], &field(body, "sp_checksum")) {
            return Err(Refusal::CHECKSUM);
        }
        if !id_format_ok(&id) {
            return Err(Refusal::ID_FORMAT);
        }
        let person = self
            .person(&id)
            .ok_or(Refusal("IDNUM_USERPROF_NF", "查無使用者"))?;
        let mut state = self.lock();
        if !state.transactions.insert(txn.clone()) {
            return Err(Refusal("TXNLOG_INS_ERR", "交易紀錄新增失敗"));
        }
        let is_fido = if person.device { "Y" } else { "N" };
        let idp_checksum = self.idp(state.broken, &[&txn, "0", is_fido, "Y"]);
        Ok(json!({ "is_fido": is_fido, "is_mcert_sign": "Y", "idp_checksum": idp_checksum }))
    }

    /// One place for MOI's envelope.
    fn api(&self, interface: &str, body: &[u8]) -> Value {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return envelope(interface, Err(Refusal("SPTKT_PLD_FT_ERR", "JSON 格式錯誤")));
        };
        let mut seen = body.clone();
        seen.remove("sp_checksum");
        self.lock()
            .seen
            .push(json!({ "interface": interface, "body": seen }));
        let outcome = match interface {
            "ATH-01" => self.ticket(&body, false),
            "ATH-03" => self.ticket(&body, true),
            "ATH-02" => self.result(&body),
            _ => self.device_status(&body),
        };
        envelope(interface, outcome)
    }

    fn control(&self, path: &str, body: &[u8]) -> Result<(), String> {
        #[derive(Deserialize)]
        struct TicketRef {
            sp_ticket_id: String,
        }
        #[derive(Deserialize)]
        struct Swap {
            id_num: String,
            person: String,
        }
        #[derive(Deserialize)]
        struct ReportAs {
            id_num: String,
            #[serde(rename = "as")]
            reported: String,
        }
        #[derive(Deserialize)]
        struct Replay {
            sp_ticket_id: String,
            from: String,
        }
        #[derive(Deserialize)]
        struct Flag {
            on: bool,
        }
        #[derive(Deserialize)]
        struct Delay {
            ms: u64,
        }
        let parse_err = |e: serde_json::Error| format!("bad control body: {e}");
        let mut state = self.lock();
        match path {
            "/_standin/approve" | "/_standin/decline" | "/_standin/expire" => {
                let r: TicketRef = serde_json::from_slice(body).map_err(parse_err)?;
                let ticket = state
                    .tickets
                    .get_mut(&r.sp_ticket_id)
                    .ok_or("no such ticket")?;
                ticket.phase = match path {
                    "/_standin/approve" => Phase::Approved,
                    "/_standin/decline" => Phase::Declined,
                    _ => Phase::Expired,
                };
            }
            "/_standin/certificate" => {
                let s: Swap = serde_json::from_slice(body).map_err(parse_err)?;
                let person = PEOPLE
                    .iter()
                    .find(|p| p.name == s.person)
                    .ok_or("no such person")?;
                state.swapped.insert(s.id_num, person.name);
            }
            "/_standin/report-id" => {
                let r: ReportAs = serde_json::from_slice(body).map_err(parse_err)?;
                state.reported_as.insert(r.id_num, r.reported);
            }
            "/_standin/replay" => {
                let r: Replay = serde_json::from_slice(body).map_err(parse_err)?;
                let from = state
                    .tickets
                    .get(&r.from)
                    .ok_or("no such ticket (from)")?
                    .sign_data
                    .clone();
                state
                    .tickets
                    .get_mut(&r.sp_ticket_id)
                    .ok_or("no such ticket")?
                    .signs_for = Some(from);
            }
            "/_standin/break" => {
                let f: Flag = serde_json::from_slice(body).map_err(parse_err)?;
                state.broken = f.on;
            }
            "/_standin/delay" => {
                let d: Delay = serde_json::from_slice(body).map_err(parse_err)?;
                state.delay = Duration::from_millis(d.ms);
            }
            _ => return Err("no such control".into()),
        }
        Ok(())
    }
}

fn envelope(interface: &str, outcome: Result<Value, Refusal>) -> Value {
    match outcome {
        Ok(result) => json!({ "error_code": "0", "error_message": "成功", "result": result }),
        Err(Refusal(code, message)) => json!({
            "error_code": format!("SP-API-{interface}-{code}"),
            "error_message": message,
        }),
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Answer = Response<Full<Bytes>>;

fn json_answer(status: StatusCode, value: &Value) -> Answer {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Maps a request to its handler and the handler's outcome to a response.
async fn route(standin: &Arc<Standin>, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method == Method::GET && path == "/_standin/state" {
        let state = standin.lock();
        let mut tickets: Vec<(&String, &TicketState)> = state.tickets.iter().collect();
        tickets.sort_by_key(|(_, t)| t.seq);
        let tickets: Vec<Value> = tickets
            .into_iter()
            .map(|(id, t)| json!({ "sp_ticket_id": id, "id_num": t.id_num, "phase": format!("{:?}", t.phase) }))
            .collect();
        return json_answer(
            StatusCode::OK,
            &json!({ "requests": state.seen, "tickets": tickets }),
        );
    }
    if method != Method::POST {
        return json_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "POST only" }),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return json_answer(StatusCode::PAYLOAD_TOO_LARGE, &json!({ "error": "body" })),
    };
    let interface = match path.as_str() {
        "/moise/sp/getSpTicket" => "ATH-01",
        "/moise/sp/requestAthOrSignPush" => "ATH-03",
        "/moise/sp/getAthOrSignResult" => "ATH-02",
        "/moise/sp/checkDeviceStatus" => "LF-01",
        p if p.starts_with("/_standin/") => {
            return match standin.control(p, &body) {
                Ok(()) => json_answer(StatusCode::OK, &json!({ "ok": true })),
                Err(e) => json_answer(StatusCode::BAD_REQUEST, &json!({ "ok": false, "error": e })),
            };
        }
        // A Spring-style gateway error, as MOI's front answers unknown paths.
        _ => {
            return json_answer(
                StatusCode::NOT_FOUND,
                &json!({ "timestamp": now_ms(), "status": 404, "error": "Not Found", "path": path }),
            );
        }
    };
    let delay = standin.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    json_answer(StatusCode::OK, &standin.api(interface, &body))
}

async fn handle(standin: Arc<Standin>, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let mut resp = route(&standin, req).await;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Resolves on SIGTERM or SIGINT (installed before the listening line is printed).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.dir).with_context(|| format!("creating {}", cli.dir.display()))?;
    let dir = std::fs::canonicalize(&cli.dir)
        .with_context(|| format!("resolving {}", cli.dir.display()))?;
    let pki = TestPki::generate();
    let holders = holders(&pki);
    let mut key = [0u8; 32];
    rand::fill(&mut key[..]);

    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    write_files(&dir, &pki, &holders, &cli.sp_service_id, &key, &url)?;

    let standin = Arc::new(Standin {
        sp_service_id: cli.sp_service_id,
        key: SpKey::new(key),
        holders,
        state: Mutex::new(State::default()),
    });
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "twfido-standin listening on {url}")?;
    stdout.flush()?;
    drop(stdout);

    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        eprintln!("twfido-standin: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let standin = Arc::clone(&standin);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(Arc::clone(&standin), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}
