//! `hipki-standin`: a stand-in for the MOI "HiPKI Local Sign Server" component (the HTTP
//! server on the user's computer, normally at <http://localhost:61161>, through which web
//! pages use a citizen digital certificate card, 自然人憑證), with a software key, so the
//! Rust suites and the browser tests can run the whole card flow.
//!
//! It generates a MOICA-shaped PKI ([`menshen_pki::testpki`]) and six cards, writes the CA
//! files, the CRLs (G3, G2, the root's) and a `certificate.toml` fragment for the gateway into `--dir`, then serves
//! the component's HTTP API on loopback and prints one line,
//! `hipki-standin listening on http://127.0.0.1:<PORT>`.
//!
//! # Layout
//! - [`Cli`] and `main`: wiring only.
//! - [`Card`], [`generate_cards`], [`write_files`]: the PKI, the cards and the files.
//! - [`State`] and [`State::decide`]: what the "card" answers to a signing request, as a
//!   [`Decision`] value; [`TbsPackage::parse`] checks the request.
//! - [`route`]: one place that maps requests to handlers and handlers to responses.
//! - [`bmp`]: the JSON-in-pixels image the component serves for pages that read it through
//!   a canvas.
//!
//! # HTTP API
//! Every response carries `Access-Control-Allow-Origin: *` and `Cache-Control: no-store`.
//! - `GET /`: `version:<version>` as text.
//! - `GET /pkcs11info[?withcert=true]`: the reader, the card and (with `withcert`) its
//!   signing and encryption certificates, as JSON.
//! - `GET /p11Image.bmp[?withcert=true]`: the same JSON packed into a 24-bit BMP, three bytes
//!   per pixel (R, G, B), left to right, zero-filled.
//! - `GET /popupForm`: the page a site opens with `window.open`; it asks its opener for the
//!   tbsPackage (`{"func":"getTbs"}`), posts it to `/sign`, and posts the answer back.
//! - `POST /sign`: signs a tbsPackage; always HTTP 200 with a JSON answer whose `ret_code`
//!   says what happened (0x76000001: parameter error; 0x76100003: no reader; 0x76000006: no
//!   card; 0x76000998: empty PIN; 0x76100006: wrong PIN or card locked, with `last_error`
//!   0x80000002 / 0x80000001 (tries left), 0xA0 (CKR_PIN_INCORRECT) or 0xA4
//!   (CKR_PIN_LOCKED)).
//! - `POST /_standin/card`, `/_standin/fail`, `/_standin/config`, `GET /_standin/state`:
//!   test controls (which card is inserted, forced failures, version, PIN-tries reporting)
//!   and what the stand-in has seen.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use menshen_pki::testpki::{Generation, LeafOptions, TEST_POLICY_OID, TestLeaf, TestPki};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Plays the HiPKI Local Sign Server component on loopback with generated test cards.
#[derive(Debug, Parser)]
#[command(name = "hipki-standin", version)]
struct Cli {
    /// Directory to write the CA certificates, the CRL, the card certificates and
    /// `certificate.toml` into (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (the real component uses 61161).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The cards' PIN.
    #[arg(long, default_value = "123456")]
    pin: String,
    /// Random serials listed in the G3 CRL besides the `revoked` card's, so the gateway
    /// loads a CRL of realistic size.
    #[arg(long, default_value_t = 1000)]
    crl_entries: usize,
}

/// The version the real component reported when this stand-in was written.
const DEFAULT_VERSION: &str = "1.3.4.103339";
/// Where users download the real component; written into `certificate.toml`.
const COMPONENT_DOWNLOAD_URL: &str = "https://moica.nat.gov.tw/download_1.html";
/// PIN tries a card starts with (and gets back after a correct PIN).
const PIN_TRIES: u8 = 3;
/// Larger `/sign` and control bodies are refused; a tbsPackage is a few hundred bytes.
const MAX_BODY: usize = 1 << 20;
const SLOT_DESCRIPTION: &str = "Generic Smart Card Reader Interface 0";
const TOKEN_LABEL: &str = "HiCOS PKI Smart Card";

/// `ret_code` and `last_error` values of the component's `/sign` answers.
mod code {
    /// A malformed tbsPackage: not JSON, wrong `func`, missing or undecodable `tbs`,
    /// `hashAlgorithm` other than SHA256, unknown `signatureType` or `tbsEncoding`.
    pub const PARAMETER: u32 = 0x7600_0001;
    /// No card in the reader.
    pub const NO_CARD: u32 = 0x7600_0006;
    /// The PIN is empty.
    pub const EMPTY_PIN: u32 = 0x7600_0998;
    /// No card reader.
    pub const NO_READER: u32 = 0x7610_0003;
    /// Login failed: wrong PIN or locked card (`last_error` tells which).
    pub const PIN: u32 = 0x7610_0006;
    /// The stand-in itself failed while signing (a bug here, never the request's fault).
    pub const INTERNAL: u32 = 0x7600_0000;
    /// `last_error`: wrong PIN, two tries left.
    pub const TWO_TRIES_LEFT: u32 = 0x8000_0002;
    /// `last_error`: wrong PIN, one try left.
    pub const ONE_TRY_LEFT: u32 = 0x8000_0001;
    /// `last_error`: CKR_PIN_INCORRECT, when the card does not report tries left.
    pub const CKR_PIN_INCORRECT: u32 = 0xA0;
    /// `last_error`: CKR_PIN_LOCKED.
    pub const CKR_PIN_LOCKED: u32 = 0xA4;
}

// ---------------------------------------------------------------------------------------
// Cards and files
// ---------------------------------------------------------------------------------------

/// One certificate on a card.
struct CardCert {
    leaf: TestLeaf,
    serial: u64,
    /// The DER, base64, as `pkcs11info` and `/sign` send it.
    b64: String,
}

impl CardCert {
    fn new(pki: &TestPki, opts: LeafOptions) -> CardCert {
        let serial = opts.serial;
        let leaf = pki.leaf(opts);
        let b64 = STANDARD.encode(&leaf.certificate_der);
        CardCert { leaf, serial, b64 }
    }
}

/// A test card: the holder, the card number, a signing and an encryption certificate.
struct Card {
    /// The name tests select it by (`POST /_standin/card`).
    name: &'static str,
    /// The card's own serial number (`token.serialNumber`, `cardSN`).
    number: String,
    cn: String,
    signing: CardCert,
    /// Listed in `pkcs11info` with usage keyEncipherment, never used to sign: pages must
    /// pick the signing certificate.
    encryption: CardCert,
}

/// The serial number the CRL lists.
const REVOKED_SERIAL: u64 = 0x1234_567b;

/// The cards, in the order of their card numbers.
fn card_options() -> Vec<(&'static str, LeafOptions)> {
    let base = LeafOptions::default();
    vec![
        ("default", base.clone()),
        (
            "renewed",
            LeafOptions {
                generation: Generation::G2,
                serial: 0x1234_5679,
                ..base.clone()
            },
        ),
        (
            "stranger",
            LeafOptions {
                cn: "陳大文".to_owned(),
                id_last4: "1357".to_owned(),
                serial: 0x1234_567a,
                ..base.clone()
            },
        ),
        (
            "revoked",
            LeafOptions {
                serial: REVOKED_SERIAL,
                ..base.clone()
            },
        ),
        (
            "expired",
            LeafOptions {
                // 2015-01-01 to 2021-01-01.
                not_before_unix: 1_420_070_400,
                not_after_unix: 1_609_459_200,
                serial: 0x1234_567c,
                ..base.clone()
            },
        ),
        (
            "untrusted",
            LeafOptions {
                issuer_untrusted: true,
                serial: 0x1234_567d,
                ..base
            },
        ),
    ]
}

/// Encryption certificates get the signing serial with this bit set, so all are distinct.
const ENCRYPTION_SERIAL_BIT: u64 = 1 << 32;

fn generate_cards(pki: &TestPki) -> Vec<Card> {
    card_options()
        .into_iter()
        .enumerate()
        .map(|(i, (name, opts))| {
            let encryption = LeafOptions {
                digital_signature: false,
                serial: opts.serial | ENCRYPTION_SERIAL_BIT,
                ..opts.clone()
            };
            Card {
                name,
                number: format!("TP03{:012}", i + 1),
                cn: opts.cn.clone(),
                signing: CardCert::new(pki, opts),
                encryption: CardCert::new(pki, encryption),
            }
        })
        .collect()
}

/// The G3 CRL: the `revoked` card plus `extra` random serials no card uses.
fn crl(pki: &TestPki, cards: &[Card], extra: usize) -> Vec<u8> {
    let used: BTreeSet<u64> = cards
        .iter()
        .flat_map(|c| [c.signing.serial, c.encryption.serial])
        .collect();
    let mut serials = BTreeSet::from([REVOKED_SERIAL]);
    while serials.len() < extra + 1 {
        let serial: u64 = rand::random();
        if serial != 0 && !used.contains(&serial) {
            serials.insert(serial);
        }
    }
    pki.crl(Generation::G3, serials.into_iter())
}

/// `certificate.toml`: the gateway's `[certificate]` table for this stand-in.
#[derive(Serialize)]
struct CertificateToml {
    certificate: CertificateTable,
}

#[derive(Serialize)]
struct CertificateTable {
    trust_anchors: Vec<String>,
    intermediates: Vec<String>,
    crls: Vec<String>,
    required_policies: Vec<String>,
    component_url: String,
    component_download_url: String,
}

/// Writes the PKI files and `certificate.toml` into `dir` (absolute).
fn write_files(
    dir: &Path,
    pki: &TestPki,
    cards: &[Card],
    crl_der: &[u8],
    url: &str,
) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        path.to_str()
            .map(str::to_owned)
            .with_context(|| format!("{} is not UTF-8", path.display()))
    };
    let root = write("root.der", &pki.root_der)?;
    let g2 = write("moica-g2.der", &pki.ca_g2_der)?;
    let g3 = write("moica-g3.der", &pki.ca_g3_der)?;
    let crl = write("moica-g3.crl", crl_der)?;
    // Every CA a verification asks must have a current list, or its cards fail closed: G2's
    // (no G2 card is issued here, but the CA is trusted) and the root's, about the CAs.
    let g2_crl = write("moica-g2.crl", &pki.crl(Generation::G2, std::iter::empty()))?;
    let root_crl = write("grca.crl", &pki.root_crl(std::iter::empty()))?;
    for card in cards {
        write(
            &format!("card-{}.der", card.name),
            &card.signing.leaf.certificate_der,
        )?;
    }
    let table = CertificateToml {
        certificate: CertificateTable {
            trust_anchors: vec![root],
            intermediates: vec![g2, g3],
            crls: vec![crl, g2_crl, root_crl],
            required_policies: vec![TEST_POLICY_OID.to_owned()],
            component_url: url.to_owned(),
            component_download_url: COMPONENT_DOWNLOAD_URL.to_owned(),
        },
    };
    let text = toml::to_string(&table).context("encoding certificate.toml")?;
    write("certificate.toml", text.as_bytes())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Signing decisions
// ---------------------------------------------------------------------------------------

/// What is in the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inserted {
    /// The card at this index of [`Standin::cards`].
    Card(usize),
    /// A reader without a card (`none`).
    NoCard,
    /// No reader at all (`no_reader`).
    NoReader,
}

/// A failure the next `/sign` (or every one, if sticky) answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct Forced {
    ret_code: u32,
    last_error: u32,
    sticky: bool,
}

/// The mutable part of the stand-in, changed by `/sign` and the controls.
#[derive(Debug)]
struct State {
    reader: Inserted,
    tries_left: u8,
    signatures: u64,
    /// The last tbsPackage received, PIN masked.
    last_tbs_package: Option<Value>,
    forced: Option<Forced>,
    version: String,
    /// Whether a wrong PIN reports the tries left (0x80000002 / 0x80000001) or just
    /// CKR_PIN_INCORRECT (0xA0), as some cards and drivers do.
    pin_tries_reported: bool,
}

impl State {
    fn new() -> State {
        State {
            reader: Inserted::Card(0),
            tries_left: PIN_TRIES,
            signatures: 0,
            last_tbs_package: None,
            forced: None,
            version: DEFAULT_VERSION.to_owned(),
            pin_tries_reported: true,
        }
    }

    /// What the card does with a well-formed request carrying `pin`, when the right PIN is
    /// `correct_pin`; updates the tries and the signature count.
    fn decide(&mut self, pin: &str, correct_pin: &str) -> Decision {
        if let Some(forced) = self.forced {
            if !forced.sticky {
                self.forced = None;
            }
            return Decision::Refuse {
                ret_code: forced.ret_code,
                last_error: forced.last_error,
            };
        }
        let card = match self.reader {
            Inserted::NoReader => return Decision::refuse(code::NO_READER, 0),
            Inserted::NoCard => return Decision::refuse(code::NO_CARD, 0),
            Inserted::Card(card) => card,
        };
        if pin.is_empty() {
            return Decision::refuse(code::EMPTY_PIN, 0);
        }
        if self.tries_left == 0 {
            return Decision::refuse(code::PIN, code::CKR_PIN_LOCKED);
        }
        if pin != correct_pin {
            self.tries_left -= 1;
            let last_error = match (self.tries_left, self.pin_tries_reported) {
                (0, _) => code::CKR_PIN_LOCKED,
                (_, false) => code::CKR_PIN_INCORRECT,
                (1, true) => code::ONE_TRY_LEFT,
                (_, true) => code::TWO_TRIES_LEFT,
            };
            return Decision::refuse(code::PIN, last_error);
        }
        self.tries_left = PIN_TRIES;
        self.signatures += 1;
        Decision::Sign { card }
    }

    fn insert(&mut self, reader: Inserted) {
        self.reader = reader;
        self.tries_left = PIN_TRIES;
    }
}

/// The outcome of a signing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Refuse { ret_code: u32, last_error: u32 },
    Sign { card: usize },
}

impl Decision {
    fn refuse(ret_code: u32, last_error: u32) -> Decision {
        Decision::Refuse {
            ret_code,
            last_error,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureType {
    Pkcs7,
    Pkcs1,
}

/// A checked tbsPackage.
#[derive(Debug)]
struct TbsPackage {
    tbs: Vec<u8>,
    signature_type: SignatureType,
    with_card_sn: bool,
    pin: String,
}

impl TbsPackage {
    /// Checks a tbsPackage the way the component does; the error says what is wrong (for
    /// the stand-in's stderr, never the PIN).
    fn parse(value: &Value) -> Result<TbsPackage, &'static str> {
        let Some(obj) = value.as_object() else {
            return Err("tbsPackage is not a JSON object");
        };
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        if text("func") != Some("MakeSignature") {
            return Err("func is not MakeSignature");
        }
        let tbs = text("tbs").ok_or("tbs is missing or not a string")?;
        let tbs = match text("tbsEncoding") {
            Some("NONE") => tbs.as_bytes().to_vec(),
            Some("base64") => STANDARD.decode(tbs).map_err(|_| "tbs is not base64")?,
            _ => return Err("tbsEncoding is not NONE or base64"),
        };
        if tbs.is_empty() {
            return Err("tbs is empty");
        }
        if text("hashAlgorithm") != Some("SHA256") {
            return Err("hashAlgorithm is not SHA256");
        }
        let signature_type = match text("signatureType") {
            Some("PKCS7") => SignatureType::Pkcs7,
            Some("PKCS1") => SignatureType::Pkcs1,
            _ => return Err("signatureType is not PKCS7 or PKCS1"),
        };
        let with_card_sn = match obj.get("withCardSN") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" => true,
            Some(Value::String(s)) if s == "false" => false,
            Some(_) => return Err("withCardSN is not \"true\" or \"false\""),
        };
        let pin = match obj.get("pin") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("pin is not a string"),
        };
        Ok(TbsPackage {
            tbs,
            signature_type,
            with_card_sn,
            pin,
        })
    }
}

/// The package as `/_standin/state` shows it: the PIN, if non-empty, replaced by `***`.
fn masked(mut value: Value) -> Value {
    if let Some(pin) = value.get_mut("pin")
        && pin.as_str().is_some_and(|p| !p.is_empty())
    {
        *pin = Value::from("***");
    }
    value
}

/// The `/sign` answer.
#[derive(Debug, Serialize)]
struct SignAnswer {
    func: &'static str,
    ret_code: u32,
    last_error: u32,
    signature: String,
    certb64: String,
    #[serde(rename = "cardSN")]
    card_sn: String,
}

impl SignAnswer {
    fn refused(ret_code: u32, last_error: u32) -> SignAnswer {
        SignAnswer {
            func: "sign",
            ret_code,
            last_error,
            signature: String::new(),
            certb64: String::new(),
            card_sn: String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------

struct Standin {
    cards: Vec<Card>,
    pin: String,
    state: Mutex<State>,
}

impl Standin {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters to a test program; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inserted(&self, name: &str) -> Option<Inserted> {
        match name {
            "none" => Some(Inserted::NoCard),
            "no_reader" => Some(Inserted::NoReader),
            _ => self
                .cards
                .iter()
                .position(|c| c.name == name)
                .map(Inserted::Card),
        }
    }

    fn card_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.cards.iter().map(|c| c.name).collect();
        names.extend(["none", "no_reader"]);
        names
    }

    fn pkcs11info(&self, with_cert: bool) -> String {
        let state = self.state();
        let slots = match state.reader {
            Inserted::NoReader => vec![],
            Inserted::NoCard => vec![Slot {
                slot_description: SLOT_DESCRIPTION,
                token: None,
            }],
            Inserted::Card(i) => {
                let card = &self.cards[i];
                let cert = |c: &CardCert, usage: &'static str| CertInfo {
                    certb64: c.b64.clone(),
                    usage,
                    subject_cn: card.cn.clone(),
                    serial_number: format!("{:x}", c.serial),
                };
                vec![Slot {
                    slot_description: SLOT_DESCRIPTION,
                    token: Some(Token {
                        serial_number: card.number.clone(),
                        label: TOKEN_LABEL,
                        certs: with_cert.then(|| {
                            vec![
                                cert(&card.signing, "digitalSignature"),
                                cert(&card.encryption, "keyEncipherment"),
                            ]
                        }),
                    }),
                }]
            }
        };
        let info = Pkcs11Info {
            ret_code: 0,
            last_error: 0,
            function: "pkcs11info",
            version: state.version.clone(),
            slots,
        };
        serde_json::to_string(&info).unwrap_or_default()
    }

    async fn sign(self: &Arc<Self>, body: Result<Bytes, String>) -> SignAnswer {
        let value = body.and_then(|b| {
            serde_json::from_slice::<Value>(&b).map_err(|e| format!("body is not JSON: {e}"))
        });
        if let Ok(v) = &value
            && v.is_object()
        {
            self.state().last_tbs_package = Some(masked(v.clone()));
        }
        let package = match value.as_ref().map(TbsPackage::parse) {
            Ok(Ok(package)) => package,
            Ok(Err(why)) => return parameter_error(why),
            Err(why) => return parameter_error(why),
        };
        let decision = self.state().decide(&package.pin, &self.pin);
        let card = match decision {
            Decision::Refuse {
                ret_code,
                last_error,
            } => return SignAnswer::refused(ret_code, last_error),
            Decision::Sign { card } => card,
        };
        // RSA signing is CPU work; a panic in it (a bug) must not take the connection down.
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let card = &this.cards[card];
            let signature = match package.signature_type {
                SignatureType::Pkcs7 => card.signing.leaf.sign_pkcs7(&package.tbs),
                SignatureType::Pkcs1 => card.signing.leaf.sign_pkcs1(&package.tbs),
            };
            SignAnswer {
                func: "sign",
                ret_code: 0,
                last_error: 0,
                signature: STANDARD.encode(signature),
                certb64: card.signing.b64.clone(),
                card_sn: if package.with_card_sn {
                    card.number.clone()
                } else {
                    String::new()
                },
            }
        })
        .await
        .unwrap_or_else(|e| {
            eprintln!("hipki-standin: signing failed: {e}");
            SignAnswer::refused(code::INTERNAL, 0)
        })
    }

    fn state_json(&self) -> Value {
        let state = self.state();
        let card = match state.reader {
            Inserted::Card(i) => self.cards[i].name,
            Inserted::NoCard => "none",
            Inserted::NoReader => "no_reader",
        };
        json!({
            "card": card,
            "tries_left": state.tries_left,
            "signatures": state.signatures,
            "last_tbs_package": state.last_tbs_package,
            "forced_failure": state.forced,
            "version": state.version,
            "pin_tries_reported": state.pin_tries_reported,
        })
    }

    fn set_card(&self, body: &[u8]) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CardRequest {
            card: String,
        }
        let req: CardRequest = parse_control(body)?;
        let reader = self.inserted(&req.card).ok_or_else(|| {
            format!(
                "unknown card {:?}; one of {}",
                req.card,
                self.card_names().join(", ")
            )
        })?;
        self.state().insert(reader);
        Ok(())
    }

    fn set_failure(&self, body: &[u8]) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FailRequest {
            #[serde(default)]
            clear: bool,
            ret_code: Option<u32>,
            #[serde(default)]
            last_error: u32,
            #[serde(default)]
            sticky: bool,
        }
        let req: FailRequest = parse_control(body)?;
        let forced = match (req.clear, req.ret_code) {
            (true, None) => None,
            (true, Some(_)) => return Err("give either clear or ret_code, not both".into()),
            (false, None) => return Err("ret_code is required (or clear: true)".into()),
            (false, Some(0)) => return Err("ret_code 0 is success, not a failure".into()),
            (false, Some(ret_code)) => Some(Forced {
                ret_code,
                last_error: req.last_error,
                sticky: req.sticky,
            }),
        };
        self.state().forced = forced;
        Ok(())
    }

    fn set_config(&self, body: &[u8]) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ConfigRequest {
            version: Option<String>,
            pin_tries_reported: Option<bool>,
        }
        let req: ConfigRequest = parse_control(body)?;
        if req.version.is_none() && req.pin_tries_reported.is_none() {
            return Err("give version and/or pin_tries_reported".into());
        }
        if req.version.as_deref().is_some_and(str::is_empty) {
            return Err("version must not be empty".into());
        }
        let mut state = self.state();
        if let Some(version) = req.version {
            state.version = version;
        }
        if let Some(reported) = req.pin_tries_reported {
            state.pin_tries_reported = reported;
        }
        Ok(())
    }
}

fn parameter_error(why: impl std::fmt::Display) -> SignAnswer {
    eprintln!("hipki-standin: /sign parameter error: {why}");
    SignAnswer::refused(code::PARAMETER, 0)
}

fn parse_control<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad control request: {e}"))
}

#[derive(Serialize)]
struct Pkcs11Info {
    ret_code: u32,
    last_error: u32,
    function: &'static str,
    version: String,
    slots: Vec<Slot>,
}

#[derive(Serialize)]
struct Slot {
    #[serde(rename = "slotDescription")]
    slot_description: &'static str,
    token: Option<Token>,
}

#[derive(Serialize)]
struct Token {
    #[serde(rename = "serialNumber")]
    serial_number: String,
    label: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    certs: Option<Vec<CertInfo>>,
}

#[derive(Serialize)]
struct CertInfo {
    certb64: String,
    usage: &'static str,
    #[serde(rename = "subjectCN")]
    subject_cn: String,
    /// Lowercase hex, no leading zeros.
    #[serde(rename = "serialNumber")]
    serial_number: String,
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_answer(status: StatusCode, value: &impl Serialize) -> Answer {
    let body = serde_json::to_string(value).unwrap_or_default();
    answer(status, "application/json", body)
}

fn error_answer(status: StatusCode, error: &str) -> Answer {
    json_answer(status, &json!({ "ok": false, "error": error }))
}

fn control_answer(result: Result<(), String>) -> Answer {
    match result {
        Ok(()) => json_answer(StatusCode::OK, &json!({ "ok": true })),
        Err(e) => error_answer(StatusCode::BAD_REQUEST, &e),
    }
}

const PATHS: [&str; 9] = [
    "/",
    "/pkcs11info",
    "/p11Image.bmp",
    "/popupForm",
    "/sign",
    "/_standin/card",
    "/_standin/fail",
    "/_standin/config",
    "/_standin/state",
];

fn with_cert(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(k, v)| k == "withcert" && v == "true")
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, String> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("cannot read the body: {e}"))
}

/// Maps a request to its handler and the handler's outcome to a response.
async fn route(standin: &Arc<Standin>, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_owned();
    if !PATHS.contains(&path.as_str()) {
        return error_answer(StatusCode::NOT_FOUND, "no such path");
    }
    let query = req.uri().query().map(str::to_owned);
    match (req.method().clone(), path.as_str()) {
        (Method::OPTIONS, _) => preflight(),
        (Method::GET, "/") => answer(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            format!("version:{}", standin.state().version),
        ),
        (Method::GET, "/pkcs11info") => answer(
            StatusCode::OK,
            "application/json",
            standin.pkcs11info(with_cert(query.as_deref())),
        ),
        (Method::GET, "/p11Image.bmp") => {
            match bmp(standin.pkcs11info(with_cert(query.as_deref())).as_bytes()) {
                Some(image) => answer(StatusCode::OK, "image/bmp", image),
                None => error_answer(StatusCode::INTERNAL_SERVER_ERROR, "image too large"),
            }
        }
        (Method::GET, "/popupForm") => {
            answer(StatusCode::OK, "text/html; charset=utf-8", POPUP_FORM)
        }
        (Method::POST, "/sign") => {
            let body = read_body(req).await;
            json_answer(StatusCode::OK, &standin.sign(body).await)
        }
        (Method::GET, "/_standin/state") => json_answer(StatusCode::OK, &standin.state_json()),
        (Method::POST, control) => {
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(e) => return error_answer(StatusCode::BAD_REQUEST, &e),
            };
            control_answer(match control {
                "/_standin/card" => standin.set_card(&body),
                "/_standin/fail" => standin.set_failure(&body),
                "/_standin/config" => standin.set_config(&body),
                _ => return error_answer(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            })
        }
        _ => error_answer(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// CORS preflight, including Private Network Access, so a page may also call the API with
/// `fetch` and JSON bodies.
fn preflight() -> Answer {
    let mut resp = answer(StatusCode::NO_CONTENT, "text/plain", Bytes::new());
    let headers = resp.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    headers.insert(
        HeaderName::from_static("access-control-allow-private-network"),
        HeaderValue::from_static("true"),
    );
    resp
}

async fn handle(standin: Arc<Standin>, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let mut resp = route(&standin, req).await;
    let headers = resp.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The popup: asks its opener for the tbsPackage, has `/sign` sign it, posts the answer
/// back and closes. Any failure still answers the opener (ret_code 0x76000000), so it never
/// waits forever.
const POPUP_FORM: &str = r#"<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<title>HiPKI Local Sign Server (stand-in)</title>
</head>
<body>
<p id="status">簽章中…</p>
<script>
(function () {
  "use strict";
  var status = document.getElementById("status");
  var opener = window.opener;
  if (!opener) {
    status.textContent = "此視窗須由網頁開啟（沒有 window.opener），無法簽章。";
    return;
  }
  var busy = false;
  function reply(answer) {
    try {
      opener.postMessage(JSON.stringify(answer), "*");
    } finally {
      window.close();
    }
  }
  function failed() {
    reply({ func: "sign", ret_code: 1979711488, last_error: 0, signature: "", certb64: "", cardSN: "" });
  }
  window.addEventListener("message", function (event) {
    if (event.source !== opener || busy) {
      return;
    }
    busy = true;
    status.textContent = "簽章中…";
    var body = typeof event.data === "string" ? event.data : JSON.stringify(event.data);
    fetch("/sign", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body,
      cache: "no-store"
    })
      .then(function (response) { return response.json(); })
      .then(reply, failed);
  });
  opener.postMessage(JSON.stringify({ func: "getTbs" }), "*");
})();
</script>
</body>
</html>
"#;

/// Packs `data` into a 24-bit uncompressed BMP one pixel high: pixel i holds bytes 3i, 3i+1,
/// 3i+2 as (R, G, B), so a page reading the pixels left to right through a canvas gets the
/// bytes back (up to the first zero). `None` if it would not fit the header's fields.
fn bmp(data: &[u8]) -> Option<Vec<u8>> {
    const HEADERS: usize = 14 + 40;
    let width = data.len().div_ceil(3).max(1);
    let row = (width * 3).next_multiple_of(4);
    let file_size = u32::try_from(HEADERS + row).ok()?;
    let width = i32::try_from(width).ok()?;
    let row_size = u32::try_from(row).ok()?;

    let mut out = Vec::with_capacity(HEADERS + row);
    // BITMAPFILEHEADER
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&file_size.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // reserved
    out.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    // BITMAPINFOHEADER
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&1i32.to_le_bytes()); // height; positive: bottom-up
    out.extend_from_slice(&1u16.to_le_bytes()); // planes
    out.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
    out.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB
    out.extend_from_slice(&row_size.to_le_bytes());
    out.extend_from_slice(&2835i32.to_le_bytes()); // 72 dpi
    out.extend_from_slice(&2835i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // palette colours
    out.extend_from_slice(&0u32.to_le_bytes()); // important colours
    for pixel in data.chunks(3) {
        let byte = |i: usize| pixel.get(i).copied().unwrap_or(0);
        // Stored as B, G, R.
        out.extend_from_slice(&[byte(2), byte(1), byte(0)]);
    }
    out.resize(HEADERS + row, 0);
    Some(out)
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

/// Resolves on SIGTERM or SIGINT. The handlers are installed here, before the listening
/// line is printed, so a test that signals right after reading it is not killed by the
/// default action.
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
    let cards = generate_cards(&pki);
    let crl_der = crl(&pki, &cards, cli.crl_entries);

    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    write_files(&dir, &pki, &cards, &crl_der, &url)?;

    let standin = Arc::new(Standin {
        cards,
        pin: cli.pin,
        state: Mutex::new(State::new()),
    });
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "hipki-standin listening on {url}")?;
    stdout.flush()?;
    drop(stdout);

    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        eprintln!("hipki-standin: accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What a page does with the canvas: R, G, B of each pixel, left to right, up to a zero.
    fn decode(image: &[u8]) -> Vec<u8> {
        assert_eq!(&image[..2], b"BM");
        let le32 = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().unwrap());
        assert_eq!(le32(2) as usize, image.len());
        let offset = le32(10) as usize;
        assert_eq!(le32(14), 40);
        let width = le32(18) as usize;
        assert_eq!(le32(22), 1);
        assert_eq!(u16::from_le_bytes([image[28], image[29]]), 24);
        assert_eq!((image.len() - offset) % 4, 0, "row padded to 4 bytes");
        let mut out = Vec::new();
        for px in image[offset..offset + width * 3].chunks(3) {
            out.extend_from_slice(&[px[2], px[1], px[0]]);
        }
        let end = out.iter().position(|&b| b == 0).unwrap_or(out.len());
        out.truncate(end);
        out
    }

    #[test]
    fn bmp_carries_the_bytes_in_rgb_order() {
        for text in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "{\"王小明\":1}",
            &"x".repeat(1001),
        ] {
            let image = bmp(text.as_bytes()).unwrap();
            assert_eq!(decode(&image), text.as_bytes(), "{text:?}");
        }
        // Pixel 0 is (R, G, B) = ('a', 'b', 'c'), stored B, G, R.
        assert_eq!(&bmp(b"abc").unwrap()[54..57], b"cba");
    }

    #[test]
    fn wrong_pins_count_down_then_lock_and_a_right_pin_resets() {
        let mut s = State::new();
        let pin = |ret_code, last_error| Decision::refuse(ret_code, last_error);
        assert_eq!(
            s.decide("1", "123456"),
            pin(code::PIN, code::TWO_TRIES_LEFT)
        );
        assert_eq!(s.decide("123456", "123456"), Decision::Sign { card: 0 });
        assert_eq!(
            s.decide("1", "123456"),
            pin(code::PIN, code::TWO_TRIES_LEFT)
        );
        assert_eq!(s.decide("1", "123456"), pin(code::PIN, code::ONE_TRY_LEFT));
        assert_eq!(
            s.decide("1", "123456"),
            pin(code::PIN, code::CKR_PIN_LOCKED)
        );
        assert_eq!(
            s.decide("123456", "123456"),
            pin(code::PIN, code::CKR_PIN_LOCKED)
        );
        assert_eq!(s.decide("", "123456"), pin(code::EMPTY_PIN, 0));
        s.insert(Inserted::Card(2));
        s.pin_tries_reported = false;
        assert_eq!(
            s.decide("1", "123456"),
            pin(code::PIN, code::CKR_PIN_INCORRECT)
        );
        assert_eq!(
            s.decide("1", "123456"),
            pin(code::PIN, code::CKR_PIN_INCORRECT)
        );
        assert_eq!(
            s.decide("1", "123456"),
            pin(code::PIN, code::CKR_PIN_LOCKED)
        );
        assert_eq!(s.signatures, 1);
    }

    #[test]
    fn tbs_package_checks() {
        let ok = json!({"tbs":"aGk=","tbsEncoding":"base64","hashAlgorithm":"SHA256",
            "withCardSN":"true","pin":"1","nonce":"n","func":"MakeSignature","signatureType":"PKCS1"});
        let p = TbsPackage::parse(&ok).unwrap();
        assert_eq!(p.tbs, b"hi");
        assert!(p.with_card_sn);
        assert_eq!(p.signature_type, SignatureType::Pkcs1);
        for (field, bad) in [
            ("func", json!("sign")),
            ("tbs", json!(null)),
            ("tbs", json!("***")),
            ("tbsEncoding", json!("hex")),
            ("hashAlgorithm", json!("SHA1")),
            ("signatureType", json!("XML")),
            ("withCardSN", json!("yes")),
            ("pin", json!(123456)),
        ] {
            let mut v = ok.clone();
            v[field] = bad;
            assert!(TbsPackage::parse(&v).is_err(), "{field}");
        }
        assert_eq!(masked(ok)["pin"], "***");
        assert_eq!(masked(json!({"pin":""}))["pin"], "");
    }
}
