//! The HiPKI component stand-in (`hipki-standin`), run as the built binary: the files it
//! writes for the gateway, the component's HTTP API as the pages use it, signatures that
//! `menshen_pki::verify` accepts (or rejects, for the revoked, untrusted and expired cards)
//! against those files, and every error code of `/sign`.
//!
//! Each test starts its own stand-in (tests mutate which card is inserted), so there are a
//! few broad tests rather than many small ones: every start generates a PKI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use menshen_pki::testpki::TEST_POLICY_OID;
use menshen_pki::{
    Freshness, Policy, Rejection, RevocationLists, RevocationStatus, SignedChallenge, TrustStore,
    VerifiedCertificate, verify,
};
use menshen_tests::client::client_builder;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const PIN: &str = "123456";
const PARAMETER: u32 = 0x7600_0001;
const NO_CARD: u32 = 0x7600_0006;
const EMPTY_PIN: u32 = 0x7600_0998;
const NO_READER: u32 = 0x7610_0003;
const PIN_FAILED: u32 = 0x7610_0006;
const TWO_TRIES_LEFT: u32 = 0x8000_0002;
const ONE_TRY_LEFT: u32 = 0x8000_0001;
const CKR_PIN_INCORRECT: u32 = 0xA0;
const CKR_PIN_LOCKED: u32 = 0xA4;
const CARDS: [&str; 6] = [
    "default",
    "renewed",
    "stranger",
    "revoked",
    "expired",
    "untrusted",
];

/// A running stand-in, killed on drop.
struct Standin {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    client: reqwest::Client,
    /// Held so the stand-in's stdout stays open.
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// A response read whole.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {} {}", self.status, self.text());
        })
    }
}

impl Standin {
    async fn start(args: &[&str]) -> Standin {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hipki-standin"))
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn hipki-standin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(300), stdout.next_line())
            .await
            .expect("hipki-standin did not start")
            .expect("read hipki-standin stdout")
            .expect("hipki-standin exited before listening");
        let base = line
            .strip_prefix("hipki-standin listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Standin {
            child,
            base,
            dir,
            client: client_builder().build().expect("client"),
            _stdout: stdout,
        }
    }

    /// The directory as the stand-in sees it (absolute, symlinks resolved).
    fn dir(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).expect("canonical dir")
    }

    fn file(&self, name: &str) -> Vec<u8> {
        let path = self.dir.path().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request to hipki-standin");
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.expect("body").to_vec(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await
    }

    /// A control request that must succeed.
    async fn control(&self, path: &str, body: Value) {
        let reply = self.post(path, body.to_string()).await;
        assert_eq!(reply.status, 200, "{path} {body}: {}", reply.text());
        assert_eq!(reply.json(), json!({"ok": true}));
    }

    async fn insert(&self, card: &str) {
        self.control("/_standin/card", json!({ "card": card }))
            .await;
    }

    async fn state(&self) -> Value {
        self.get("/_standin/state").await.json()
    }

    /// `/sign` with a raw body: always HTTP 200 JSON.
    async fn sign_raw(&self, body: &str) -> Value {
        let reply = self.post("/sign", body.to_owned()).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("content-type"), "application/json");
        let answer = reply.json();
        assert_eq!(answer["func"], "sign");
        if answer["ret_code"] != 0 {
            assert_eq!(answer["signature"], "", "{answer}");
            assert_eq!(answer["certb64"], "", "{answer}");
        }
        answer
    }

    async fn sign(&self, package: &Value) -> Value {
        self.sign_raw(&package.to_string()).await
    }

    /// The trust store and CRLs the gateway would load from `certificate.toml`.
    fn trust(&self) -> (TrustStore, RevocationLists) {
        let mut trust = TrustStore::new();
        trust.add_root(&self.file("root.der")).expect("root loads");
        trust
            .add_intermediate(&self.file("moica-g2.der"))
            .expect("G2 loads");
        trust
            .add_intermediate(&self.file("moica-g3.der"))
            .expect("G3 loads");
        let at = Freshness {
            now_unix: now_unix(),
            grace_secs: 0,
        };
        let mut crls = RevocationLists::new();
        for name in ["moica-g3.crl", "moica-g2.crl", "grca.crl"] {
            crls.load(&self.file(name), &trust, at)
                .unwrap_or_else(|e| panic!("{name} loads: {e}"));
        }
        (trust, crls)
    }
}

/// A tbsPackage as the pages send it.
fn package(tbs: &[u8], signature_type: &str, pin: &str) -> Value {
    json!({
        "tbs": STANDARD.encode(tbs),
        "tbsEncoding": "base64",
        "hashAlgorithm": "SHA256",
        "withCardSN": "true",
        "pin": pin,
        "nonce": "nonce-1",
        "func": "MakeSignature",
        "signatureType": signature_type,
    })
}

fn with(mut package: Value, field: &str, value: Value) -> Value {
    package[field] = value;
    package
}

fn codes(answer: &Value) -> (u64, u64) {
    (
        answer["ret_code"].as_u64().expect("ret_code"),
        answer["last_error"].as_u64().expect("last_error"),
    )
}

fn refused(ret_code: u32, last_error: u32) -> (u64, u64) {
    (u64::from(ret_code), u64::from(last_error))
}

fn now_unix() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(now.as_secs()).expect("time fits")
}

/// Checks a successful `/sign` answer over `tbs` the way the gateway does.
fn check(
    answer: &Value,
    kind: &str,
    tbs: &[u8],
    (trust, crls): &(TrustStore, RevocationLists),
) -> Result<VerifiedCertificate, Rejection> {
    assert_eq!(codes(answer), (0, 0), "{answer}");
    let signature = STANDARD
        .decode(answer["signature"].as_str().expect("signature"))
        .expect("signature is base64");
    let certificate = STANDARD
        .decode(answer["certb64"].as_str().expect("certb64"))
        .expect("certb64 is base64");
    let policy = Policy {
        now_unix: now_unix(),
        required_policy_oids: vec![TEST_POLICY_OID.to_owned()],
        crl_grace_secs: 0,
    };
    let signed = match kind {
        "PKCS7" => SignedChallenge::Pkcs7 {
            cms_der: &signature,
        },
        "PKCS1" => SignedChallenge::Pkcs1 {
            signature: &signature,
            certificate_der: &certificate,
        },
        other => panic!("signature type {other}"),
    };
    verify(&signed, tbs, trust, crls, &policy)
}

/// What a page does with the canvas: R, G, B of each pixel, left to right, up to a zero.
fn decode_bmp(image: &[u8]) -> String {
    assert_eq!(&image[..2], b"BM");
    let le32 = |at: usize| {
        let bytes: [u8; 4] = image[at..at + 4].try_into().expect("4 bytes");
        u32::from_le_bytes(bytes) as usize
    };
    assert_eq!(le32(2), image.len(), "file size");
    let offset = le32(10);
    assert_eq!(le32(14), 40, "BITMAPINFOHEADER");
    let width = le32(18);
    assert_eq!(le32(22), 1, "height 1, bottom-up");
    assert_eq!(u16::from_le_bytes([image[28], image[29]]), 24, "24 bits");
    assert_eq!(le32(30), 0, "uncompressed");
    assert_eq!(image.len() - offset, (width * 3).next_multiple_of(4));
    let mut bytes = Vec::new();
    for pixel in image[offset..offset + width * 3].chunks(3) {
        bytes.extend_from_slice(&[pixel[2], pixel[1], pixel[0]]);
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.truncate(end);
    String::from_utf8(bytes).expect("UTF-8 JSON in the pixels")
}

fn as_path(value: &toml::Value) -> &Path {
    let path = Path::new(value.as_str().expect("path string"));
    assert!(path.is_absolute(), "{}", path.display());
    path
}

#[tokio::test]
async fn writes_the_pki_and_a_certificate_table_then_exits_on_sigterm() {
    let port = menshen_tests::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut standin = Standin::start(&["--listen", &listen, "--crl-entries", "3"]).await;
    assert_eq!(standin.base, format!("http://{listen}"));

    let text = String::from_utf8(standin.file("certificate.toml")).expect("UTF-8");
    let doc: toml::Table = toml::from_str(&text).expect("certificate.toml is TOML");
    let table = doc["certificate"].as_table().expect("[certificate]");
    let dir = standin.dir();
    let paths = |key: &str| -> Vec<PathBuf> {
        table[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is an array"))
            .iter()
            .map(|v| as_path(v).to_owned())
            .collect()
    };
    assert_eq!(paths("trust_anchors"), [dir.join("root.der")]);
    assert_eq!(
        paths("intermediates"),
        [dir.join("moica-g2.der"), dir.join("moica-g3.der")]
    );
    assert_eq!(
        paths("crls"),
        [
            dir.join("moica-g3.crl"),
            dir.join("moica-g2.crl"),
            dir.join("grca.crl")
        ]
    );
    assert_eq!(
        table["required_policies"].as_array().expect("array"),
        &[toml::Value::from(TEST_POLICY_OID)]
    );
    assert_eq!(
        table["component_url"].as_str(),
        Some(format!("http://127.0.0.1:{port}").as_str())
    );
    assert_eq!(
        table["component_download_url"].as_str(),
        Some("https://moica.nat.gov.tw/download_1.html")
    );
    assert_eq!(table.len(), 6, "{text}");

    // The CRL verifies against the written CAs and lists the revoked card plus 3 others.
    let (_, crls) = standin.trust();
    assert_eq!(crls.len(), 4);
    for card in CARDS {
        let der = standin.file(&format!("card-{card}.der"));
        assert_eq!(der[0], 0x30, "card-{card}.der is DER");
    }

    let pid = standin.child.id().expect("running");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(60), standin.child.wait())
        .await
        .expect("hipki-standin exits on SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn answers_like_the_component() {
    let standin = Standin::start(&[]).await;

    let version = standin.get("/").await;
    assert_eq!(version.status, 200);
    assert_eq!(version.text(), "version:1.3.4.103339");
    assert!(version.header("content-type").starts_with("text/plain"));
    assert_eq!(version.header("access-control-allow-origin"), "*");
    assert_eq!(version.header("cache-control"), "no-store");

    // The default card, with its signing and encryption certificates.
    let reply = standin.get("/pkcs11info?withcert=true").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.header("access-control-allow-origin"), "*");
    let info = reply.json();
    assert_eq!(info["ret_code"], 0);
    assert_eq!(info["last_error"], 0);
    assert_eq!(info["function"], "pkcs11info");
    assert_eq!(info["version"], "1.3.4.103339");
    let slots = info["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 1);
    assert_eq!(
        slots[0]["slotDescription"],
        "Generic Smart Card Reader Interface 0"
    );
    let token = &slots[0]["token"];
    assert_eq!(token["serialNumber"], "TP03000000000001");
    assert_eq!(token["label"], "HiCOS PKI Smart Card");
    let certs = token["certs"].as_array().expect("certs");
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0]["usage"], "digitalSignature");
    assert_eq!(certs[0]["subjectCN"], "王小明");
    assert_eq!(certs[0]["serialNumber"], "12345678");
    assert_eq!(
        certs[0]["certb64"],
        STANDARD.encode(standin.file("card-default.der"))
    );
    assert_eq!(certs[1]["usage"], "keyEncipherment");
    assert_eq!(certs[1]["subjectCN"], "王小明");
    assert_ne!(certs[1]["serialNumber"], certs[0]["serialNumber"]);
    assert_ne!(certs[1]["certb64"], certs[0]["certb64"]);

    let without = standin.get("/pkcs11info").await.json();
    assert_eq!(
        without["slots"][0]["token"]["serialNumber"],
        "TP03000000000001"
    );
    assert!(
        without["slots"][0]["token"].get("certs").is_none(),
        "{without}"
    );
    let not_true = standin.get("/pkcs11info?withcert=false").await.json();
    assert_eq!(not_true, without);

    // Every card has its own number and certificate.
    let mut numbers = Vec::new();
    for card in CARDS {
        standin.insert(card).await;
        let info = standin.get("/pkcs11info?withcert=true").await.json();
        let token = &info["slots"][0]["token"];
        let cert = &token["certs"][0];
        assert_eq!(
            cert["certb64"],
            STANDARD.encode(standin.file(&format!("card-{card}.der")))
        );
        let cn = if card == "stranger" {
            "陳大文"
        } else {
            "王小明"
        };
        assert_eq!(cert["subjectCN"], cn);
        numbers.push(token["serialNumber"].as_str().expect("number").to_owned());
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), CARDS.len(), "{numbers:?}");

    standin.insert("none").await;
    let none = standin.get("/pkcs11info?withcert=true").await.json();
    assert_eq!(none["ret_code"], 0);
    assert_eq!(none["slots"].as_array().expect("slots").len(), 1);
    assert!(none["slots"][0]["token"].is_null(), "{none}");
    standin.insert("no_reader").await;
    let no_reader = standin.get("/pkcs11info").await.json();
    assert_eq!(no_reader["slots"], json!([]));

    // The image carries exactly the JSON, in every state.
    for (card, query) in [
        ("no_reader", ""),
        ("none", "?withcert=true"),
        ("default", ""),
        ("default", "?withcert=true"),
        ("stranger", "?withcert=true"),
    ] {
        standin.insert(card).await;
        let json_text = standin.get(&format!("/pkcs11info{query}")).await.text();
        let image = standin.get(&format!("/p11Image.bmp{query}")).await;
        assert_eq!(image.status, 200);
        assert_eq!(image.header("content-type"), "image/bmp");
        assert_eq!(image.header("access-control-allow-origin"), "*");
        assert_eq!(decode_bmp(&image.body), json_text, "{card}{query}");
    }

    // The version is configurable.
    standin
        .control("/_standin/config", json!({"version": "1.2.0.1"}))
        .await;
    assert_eq!(standin.get("/").await.text(), "version:1.2.0.1");
    assert_eq!(
        standin.get("/pkcs11info").await.json()["version"],
        "1.2.0.1"
    );

    let popup = standin.get("/popupForm").await;
    assert_eq!(popup.status, 200);
    assert_eq!(popup.header("content-type"), "text/html; charset=utf-8");
    let html = popup.text();
    assert!(html.contains("getTbs"), "{html}");
    assert!(html.contains("window.opener"), "{html}");
    assert!(html.contains("\"/sign\""), "{html}");
    assert!(html.contains("簽章中…"), "{html}");

    // Preflight, unknown paths and methods, malformed controls.
    let preflight = standin
        .send(
            standin
                .client
                .request(reqwest::Method::OPTIONS, format!("{}/sign", standin.base)),
        )
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), "*");
    assert!(
        preflight
            .header("access-control-allow-methods")
            .contains("POST")
    );
    let missing = standin.get("/nothing").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("access-control-allow-origin"), "*");
    assert_eq!(missing.json()["ok"], false);
    assert_eq!(standin.get("/sign").await.status, 405);
    for (path, body) in [
        ("/_standin/card", "not json"),
        ("/_standin/card", r#"{"card":"nobody"}"#),
        ("/_standin/card", r#"{"card":"default","extra":1}"#),
        ("/_standin/fail", "{}"),
        ("/_standin/fail", r#"{"ret_code":0}"#),
        ("/_standin/fail", r#"{"clear":true,"ret_code":5}"#),
        ("/_standin/fail", r#"{"ret_code":-1}"#),
        ("/_standin/config", "{}"),
        ("/_standin/config", r#"{"version":""}"#),
        ("/_standin/config", r#"{"pin_tries_reported":"no"}"#),
    ] {
        let reply = standin.post(path, body).await;
        assert_eq!(reply.status, 400, "{path} {body}");
        let error = reply.json();
        assert_eq!(error["ok"], false);
        assert!(!error["error"].as_str().expect("error").is_empty());
    }
    assert_eq!(standin.state().await["card"], "stranger");
}

#[tokio::test]
async fn signatures_verify_against_the_written_files() {
    let standin = Standin::start(&[]).await;
    let trust = standin.trust();

    // PKCS7 over text (tbsEncoding NONE), with the card number.
    let text = "Menshen 登入 challenge 0123";
    let pkcs7 = with(
        with(package(b"", "PKCS7", PIN), "tbsEncoding", json!("NONE")),
        "tbs",
        json!(text),
    );
    let answer = standin.sign(&pkcs7).await;
    assert_eq!(answer["cardSN"], "TP03000000000001");
    assert_eq!(
        answer["certb64"],
        STANDARD.encode(standin.file("card-default.der"))
    );
    let default = check(&answer, "PKCS7", text.as_bytes(), &trust).expect("PKCS7 verifies");
    assert_eq!(default.subject_cn, "王小明");
    assert_eq!(default.id_last4.as_deref(), Some("6789"));
    assert_eq!(default.serial_hex, "12345678");
    assert_eq!(
        default.revocation,
        RevocationStatus::Good,
        "the fragment's CRLs cover the whole path"
    );
    assert_eq!(
        check(&answer, "PKCS7", b"another challenge", &trust),
        Err(Rejection::ChallengeMismatch)
    );

    // PKCS1 over binary bytes (base64), without the card number.
    let tbs: Vec<u8> = (0..=255).collect();
    let answer = standin
        .sign(&with(
            package(&tbs, "PKCS1", PIN),
            "withCardSN",
            json!("false"),
        ))
        .await;
    assert_eq!(answer["cardSN"], "");
    let pkcs1 = check(&answer, "PKCS1", &tbs, &trust).expect("PKCS1 verifies");
    assert_eq!(pkcs1, default);

    // The renewed card: same person, the other CA generation.
    standin.insert("renewed").await;
    for kind in ["PKCS7", "PKCS1"] {
        let answer = standin.sign(&package(b"renewed", kind, PIN)).await;
        assert_eq!(answer["cardSN"], "TP03000000000002");
        let renewed = check(&answer, kind, b"renewed", &trust).expect("renewed card verifies");
        assert_eq!(renewed.subject_cn, "王小明");
        assert_eq!(renewed.id_last4.as_deref(), Some("6789"));
        assert_ne!(renewed.serial_hex, default.serial_hex);
        assert_ne!(renewed.issuer_key_id_hex, default.issuer_key_id_hex);
        assert_eq!(renewed.issuer, default.issuer);
    }

    standin.insert("stranger").await;
    let answer = standin.sign(&package(b"stranger", "PKCS7", PIN)).await;
    let stranger = check(&answer, "PKCS7", b"stranger", &trust).expect("stranger verifies");
    assert_eq!(stranger.subject_cn, "陳大文");
    assert_eq!(stranger.id_last4.as_deref(), Some("1357"));

    // The component signs with any card; the gateway's checks refuse these.
    for (card, rejection) in [
        ("revoked", Rejection::Revoked),
        ("untrusted", Rejection::UntrustedIssuer),
        ("expired", Rejection::Expired),
    ] {
        standin.insert(card).await;
        for kind in ["PKCS7", "PKCS1"] {
            let answer = standin.sign(&package(card.as_bytes(), kind, PIN)).await;
            assert_eq!(
                check(&answer, kind, card.as_bytes(), &trust),
                Err(rejection.clone()),
                "{card} {kind}"
            );
        }
    }

    // The state shows what the page sent, PIN masked.
    let state = standin.state().await;
    assert_eq!(state["card"], "expired");
    assert_eq!(state["signatures"], 2 + 2 + 1 + 3 * 2);
    assert_eq!(state["tries_left"], 3);
    let last = &state["last_tbs_package"];
    assert_eq!(last["pin"], "***");
    assert_eq!(last["func"], "MakeSignature");
    assert_eq!(last["signatureType"], "PKCS1");
    assert_eq!(last["tbs"], STANDARD.encode("expired"));
    assert_eq!(last["tbsEncoding"], "base64");
    assert_eq!(last["hashAlgorithm"], "SHA256");
    assert_eq!(last["withCardSN"], "true");
    assert_eq!(last["nonce"], "nonce-1");
    assert!(!state.to_string().contains(PIN), "{state}");
}

#[tokio::test]
async fn every_error_code() {
    let standin = Standin::start(&["--pin", "246810"]).await;
    let right = package(b"challenge", "PKCS7", "246810");
    // The default PIN is wrong once `--pin` says otherwise.
    let wrong = package(b"challenge", "PKCS7", PIN);
    let ok = (0, 0);

    // Parameter errors come first, whatever else is set up.
    standin.insert("no_reader").await;
    for body in [
        "not json".to_owned(),
        "[]".to_owned(),
        with(right.clone(), "func", json!("sign")).to_string(),
        with(right.clone(), "tbs", Value::Null).to_string(),
        with(right.clone(), "tbs", json!("not base64!")).to_string(),
        with(right.clone(), "tbs", json!("")).to_string(),
        with(right.clone(), "tbsEncoding", json!("hex")).to_string(),
        with(right.clone(), "hashAlgorithm", json!("SHA1")).to_string(),
        with(right.clone(), "signatureType", json!("CMS")).to_string(),
        with(right.clone(), "withCardSN", json!("maybe")).to_string(),
    ] {
        let answer = standin.sign_raw(&body).await;
        assert_eq!(codes(&answer), refused(PARAMETER, 0), "{body}");
    }
    assert_eq!(codes(&standin.sign(&right).await), refused(NO_READER, 0));
    standin.insert("none").await;
    assert_eq!(codes(&standin.sign(&right).await), refused(NO_CARD, 0));

    standin.insert("default").await;
    assert_eq!(
        codes(&standin.sign(&with(right.clone(), "pin", json!(""))).await),
        refused(EMPTY_PIN, 0)
    );
    let no_pin = {
        let mut p = right.clone();
        p.as_object_mut().expect("object").remove("pin");
        p
    };
    assert_eq!(codes(&standin.sign(&no_pin).await), refused(EMPTY_PIN, 0));
    assert_eq!(standin.state().await["last_tbs_package"].get("pin"), None);

    // Wrong PINs count down, the third locks the card, and then even the right PIN fails.
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, TWO_TRIES_LEFT)
    );
    assert_eq!(standin.state().await["tries_left"], 2);
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, ONE_TRY_LEFT)
    );
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, CKR_PIN_LOCKED)
    );
    assert_eq!(
        codes(&standin.sign(&right).await),
        refused(PIN_FAILED, CKR_PIN_LOCKED)
    );
    assert_eq!(standin.state().await["tries_left"], 0);
    assert_eq!(
        codes(&standin.sign(&with(right.clone(), "pin", json!(""))).await),
        refused(EMPTY_PIN, 0),
        "an empty PIN is refused before the card is asked"
    );

    // Re-inserting a card resets the tries; a right PIN resets them too.
    standin.insert("default").await;
    assert_eq!(standin.state().await["tries_left"], 3);
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, TWO_TRIES_LEFT)
    );
    assert_eq!(codes(&standin.sign(&right).await), ok);
    assert_eq!(standin.state().await["tries_left"], 3);
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, TWO_TRIES_LEFT)
    );

    // Cards that do not report tries left.
    standin
        .control("/_standin/config", json!({"pin_tries_reported": false}))
        .await;
    standin.insert("stranger").await;
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, CKR_PIN_INCORRECT)
    );
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, CKR_PIN_INCORRECT)
    );
    assert_eq!(
        codes(&standin.sign(&wrong).await),
        refused(PIN_FAILED, CKR_PIN_LOCKED)
    );
    assert_eq!(
        codes(&standin.sign(&right).await),
        refused(PIN_FAILED, CKR_PIN_LOCKED)
    );
    standin
        .control("/_standin/config", json!({"pin_tries_reported": true}))
        .await;
    standin.insert("default").await;

    // A forced failure answers once, and before the reader state.
    standin
        .control(
            "/_standin/fail",
            json!({"ret_code": 0x7610_0001, "last_error": 0x30}),
        )
        .await;
    assert_eq!(
        standin.state().await["forced_failure"]["ret_code"],
        0x7610_0001
    );
    let bad = standin.sign_raw("not json").await;
    assert_eq!(
        codes(&bad),
        refused(PARAMETER, 0),
        "parameter errors do not consume it"
    );
    assert_eq!(
        codes(&standin.sign(&right).await),
        refused(0x7610_0001, 0x30)
    );
    assert_eq!(codes(&standin.sign(&right).await), ok);

    // Sticky: every time, until cleared; it comes before the reader state.
    standin
        .control(
            "/_standin/fail",
            json!({"ret_code": 0x7600_0030, "sticky": true}),
        )
        .await;
    standin.insert("no_reader").await;
    for _ in 0..2 {
        assert_eq!(codes(&standin.sign(&right).await), refused(0x7600_0030, 0));
    }
    standin.insert("default").await;
    assert_eq!(codes(&standin.sign(&right).await), refused(0x7600_0030, 0));
    standin
        .control("/_standin/fail", json!({"clear": true}))
        .await;
    assert!(standin.state().await["forced_failure"].is_null());
    let answer = standin.sign(&right).await;
    assert_eq!(codes(&answer), ok);
    assert_eq!(answer["cardSN"], "TP03000000000001");

    let state = standin.state().await;
    assert_eq!(state["signatures"], 3);
    assert_eq!(state["last_tbs_package"]["pin"], "***");
    assert!(!state.to_string().contains("246810"), "{state}");
}
