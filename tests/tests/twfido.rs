//! The TW FidO client (`menshen-twfido`) against the real `twfido-standin` process: a
//! signature over exactly our challenge that verifies with the returned certificate, every
//! failure code, forged answers, a wrong key, and MOI down or slow.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use menshen_pki::{Freshness, Policy, RevocationLists, SignedChallenge, TrustStore, verify};
use menshen_tests::twfido::Standin;
use menshen_twfido::{
    Challenge, Client, DeviceOutcome, Error, Kind, ResultOutcome, Settings, SpKey, Ticket,
    TicketOutcome, TimeLimitFormat,
};
use serde_json::{Value, json};
use tokio::time::Instant;

const HOLDER: &str = "A123456789";
const STRANGER: &str = "B223456782";
const NO_DEVICE: &str = "C123456781";
const ORIGIN: &str = "https://portal.school.example";

/// What these tests add to the stand-in: a client configured for it and its PKI.
trait StandinExt {
    fn settings(&self) -> Settings;
    fn client(&self) -> Client;
    fn trust(&self) -> (TrustStore, RevocationLists);
}

impl StandinExt for Standin {
    fn settings(&self) -> Settings {
        Settings {
            max_concurrent: 4,
            ..Settings::new(
                &format!("{}/", self.base),
                &self.sp_service_id,
                SpKey::new(self.key),
                Duration::from_secs(120),
            )
        }
    }

    fn client(&self) -> Client {
        Client::new(self.settings()).expect("client")
    }

    /// The stand-in's PKI as the gateway would load it.
    fn trust(&self) -> (TrustStore, RevocationLists) {
        let mut trust = TrustStore::new();
        trust.add_root(&self.file("grca-g3.der")).expect("root");
        trust
            .add_intermediate(&self.file("moica-g3.der"))
            .expect("G3");
        // Judged by the wall clock, as the gateway loads them.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let at = Freshness {
            now_unix: i64::try_from(now).expect("time fits"),
            grace_secs: 0,
        };
        let mut crls = RevocationLists::new();
        for name in ["moica-g3.crl", "grca-g3.crl"] {
            crls.load_der(&self.file(name), &trust, at)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        (trust, crls)
    }
}

/// The fragment the stand-in writes, with a listener, a site and an `[otp]` table, passes
/// `menshen check-config`: it can be handed to the gateway as it is.
#[tokio::test]
async fn the_fragment_passes_check_config() {
    let standin = Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await;
    let fragment = std::fs::read_to_string(standin.dir.path().join("mobile-certificate.toml"))
        .expect("fragment");
    let path = standin.dir.path().join("menshen.toml");
    std::fs::write(
        &path,
        format!(
            "[[listen]]\naddress = \"127.0.0.1:0\"\n[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n\
             upstreams = [\"127.0.0.1:9\"]\n[otp]\nkeys = \"k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n\
             {fragment}"
        ),
    )
    .expect("write");
    let out = menshen_tests::gateway::cli_with_stdin(
        &["check-config", path.to_str().unwrap_or("")],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn challenge() -> Challenge {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    Challenge::new(ORIGIN, now, 300).expect("challenge")
}

fn issued(outcome: TicketOutcome) -> Ticket {
    match outcome {
        TicketOutcome::Issued(ticket) => ticket,
        TicketOutcome::Refused(code) => panic!("refused: {code:?}"),
    }
}

fn refused(outcome: TicketOutcome) -> menshen_twfido::ErrorCode {
    match outcome {
        TicketOutcome::Refused(code) => code,
        TicketOutcome::Issued(ticket) => panic!("issued {ticket:?}"),
    }
}

#[tokio::test]
async fn qr_sign_in_signs_exactly_our_challenge() {
    let standin = Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await;
    let client = standin.client();
    let challenge = challenge();
    let started = Instant::now();
    let ticket = issued(
        client
            .get_sp_ticket(HOLDER, &challenge)
            .await
            .expect("ATH-01"),
    );
    assert!(ticket.digest_matches);
    assert!(ticket.expires_at_ms.is_some());
    let ath01 = standin.requests().await.remove(0);
    assert_eq!(ath01["interface"], "ATH-01");
    assert_eq!(ath01["body"]["op_mode"], "I-SCAN");
    assert_eq!(ath01["body"]["op_code"], "SIGN");
    assert_eq!(ath01["body"]["time_limit"], 120);
    assert_eq!(
        ath01["body"]["sign_info"],
        json!({"sign_type": "PKCS#1", "tbs_encoding": "base64", "hash_algorithm": "SHA256",
               "sign_data": challenge.sign_data()})
    );

    standin
        .control("approve", json!({"sp_ticket_id": ticket.sp_ticket_id}))
        .await;
    let outcome = client
        .wait_for_result(&ticket, client.deadline(started), Duration::from_secs(4))
        .await
        .expect("ATH-02");
    let ResultOutcome::Done(signed) = outcome else {
        panic!("not done: {outcome:?}");
    };
    assert_eq!(Some(&signed.hashed_id_num), ticket.hashed_id_num.as_ref());
    let certificate = signed.certificate.expect("cert");
    let (trust, crls) = standin.trust();
    let policy = Policy {
        now_unix: 1_767_312_000,
        required_policy_oids: Vec::new(),
        crl_grace_secs: 0,
    };
    let pkcs1 = SignedChallenge::Pkcs1 {
        signature: &signed.signature,
        certificate_der: &certificate,
    };
    let verified = verify(&pkcs1, challenge.tbs(), &trust, &crls, &policy).expect("verifies");
    assert_eq!(verified.subject_cn, "王小明");
    assert_eq!(verified.id_last4.as_deref(), Some("6789"));
    // Not over any other challenge.
    assert!(verify(&pkcs1, self::challenge().tbs(), &trust, &crls, &policy).is_err());

    // A result is fetched once.
    let again = client
        .get_ath_or_sign_result(&ticket)
        .await
        .expect("ATH-02");
    assert!(matches!(again, ResultOutcome::Used(_)), "{again:?}");
}

#[tokio::test]
async fn every_failure_code_has_its_outcome() {
    let standin = Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await;
    let client = standin.client();
    let ticket = issued(
        client
            .get_sp_ticket(HOLDER, &challenge())
            .await
            .expect("ATH-01"),
    );
    let pending = client
        .get_ath_or_sign_result(&ticket)
        .await
        .expect("ATH-02");
    assert_eq!(pending, ResultOutcome::Pending);
    standin
        .control("decline", json!({"sp_ticket_id": ticket.sp_ticket_id}))
        .await;
    let declined = client
        .get_ath_or_sign_result(&ticket)
        .await
        .expect("ATH-02");
    assert!(
        matches!(&declined, ResultOutcome::Declined(c) if c.system == "APP_USER_CANCEL"),
        "{declined:?}"
    );

    let ticket = issued(
        client
            .request_ath_or_sign_push(HOLDER, &challenge(), None)
            .await
            .expect("ATH-03"),
    );
    standin
        .control("expire", json!({"sp_ticket_id": ticket.sp_ticket_id}))
        .await;
    let expired = client
        .get_ath_or_sign_result(&ticket)
        .await
        .expect("ATH-02");
    assert!(
        matches!(&expired, ResultOutcome::Expired(Some(c)) if c.system == "SPTKT_OVD"),
        "{expired:?}"
    );

    let unknown = Ticket::decode(
        &Ticket::encode(&json!({"transaction_id": ticket.transaction_id, "sp_ticket_id": "nope"})),
        "x",
    )
    .expect("ticket");
    let outcome = client
        .get_ath_or_sign_result(&unknown)
        .await
        .expect("ATH-02");
    assert!(
        matches!(outcome, ResultOutcome::UnknownTicket(_)),
        "{outcome:?}"
    );

    let code = refused(
        client
            .get_sp_ticket("E123456786", &challenge())
            .await
            .expect("ATH-01"),
    );
    assert_eq!(
        (code.kind, code.system.as_str()),
        (Kind::UnknownId, "IDNUM_USERPROF_NF")
    );
    assert!(code.raw.starts_with("SP-API-ATH-01-"), "{code:?}");
    let code = refused(
        client
            .get_sp_ticket("a12345678", &challenge())
            .await
            .expect("ATH-01"),
    );
    assert_eq!(
        (code.kind, code.system.as_str()),
        (Kind::Rejected, "PM_IDN_FT_ERR")
    );

    let wrong_service = Client::new(Settings {
        sp_service_id: "1".into(),
        ..standin.settings()
    })
    .expect("client");
    let code = refused(
        wrong_service
            .get_sp_ticket(HOLDER, &challenge())
            .await
            .expect("ATH-01"),
    );
    assert_eq!(code.system, "SPSVCID_NF");
    let short = Client::new(Settings {
        time_limit: Duration::from_secs(20),
        ..standin.settings()
    })
    .expect("client");
    let code = refused(
        short
            .get_sp_ticket(HOLDER, &challenge())
            .await
            .expect("ATH-01"),
    );
    assert_eq!(code.system, "SPTKT_TIME_ORV");
    // A reused transaction ID (the client never sends one; a hand-made request does), with
    // a zero IV as several public clients use.
    let txn = "00000000-0000-4000-8000-000000000000";
    let sign_data = challenge().sign_data().to_owned();
    let sp_checksum = menshen_twfido::checksum::seal_with_iv(
        &SpKey::new(standin.key),
        &[
            txn,
            &standin.sp_service_id,
            HOLDER,
            "SIGN",
            "I-SCAN",
            "",
            &sign_data,
        ],
        [0; 12],
    );
    let body = json!({
        "transaction_id": txn, "sp_service_id": standin.sp_service_id, "sp_checksum": sp_checksum,
        "id_num": HOLDER, "op_code": "SIGN", "op_mode": "I-SCAN", "hint": "", "time_limit": 60,
        "sign_info": {"sign_type": "PKCS#1", "tbs_encoding": "base64", "hash_algorithm": "SHA256",
                      "sign_data": sign_data},
    });
    let mut codes = Vec::new();
    for _ in 0..2 {
        let answer: Value = standin
            .http
            .post(format!("{}/moise/sp/getSpTicket", standin.base))
            .json(&body)
            .send()
            .await
            .expect("ATH-01")
            .json()
            .await
            .expect("JSON");
        codes.push(answer["error_code"].as_str().unwrap_or("").to_owned());
    }
    assert_eq!(codes, ["0", "SP-API-ATH-01-TXNLOG_INS_ERR"]);
    // The integer-or-text question is settings, not code: text is accepted too.
    let text = Client::new(Settings {
        time_limit_format: TimeLimitFormat::Text,
        ..standin.settings()
    })
    .expect("client");
    issued(
        text.get_sp_ticket(HOLDER, &challenge())
            .await
            .expect("ATH-01"),
    );
}

#[tokio::test]
async fn push_with_no_device_then_qr() {
    let standin = Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await;
    let client = standin.client();
    let code = refused(
        client
            .request_ath_or_sign_push(NO_DEVICE, &challenge(), None)
            .await
            .expect("ATH-03"),
    );
    assert_eq!(
        (code.kind, code.system.as_str()),
        (Kind::NoDevice, "IDNUM_DEVPROF_NF")
    );
    let status = client.check_device_status(NO_DEVICE).await.expect("LF-01");
    assert_eq!(
        status,
        DeviceOutcome::Status {
            is_fido: false,
            is_mcert_sign: true
        }
    );
    issued(
        client
            .get_sp_ticket(NO_DEVICE, &challenge())
            .await
            .expect("ATH-01"),
    );

    issued(
        client
            .request_ath_or_sign_push(STRANGER, &challenge(), None)
            .await
            .expect("ATH-03"),
    );
    let push = standin
        .requests()
        .await
        .into_iter()
        .rfind(|r| r["interface"] == "ATH-03")
        .expect("push seen");
    let body = push["body"].as_object().expect("object");
    assert!(!body.contains_key("op_mode"), "{body:?}");
    assert!(!body.contains_key("device_user_def_desc"), "{body:?}");
    // A named phone: the alias is in the request and its checksum.
    issued(
        client
            .request_ath_or_sign_push(STRANGER, &challenge(), Some("我的手機"))
            .await
            .expect("ATH-03"),
    );
    let code = refused(
        client
            .request_ath_or_sign_push(STRANGER, &challenge(), Some("平板"))
            .await
            .expect("ATH-03"),
    );
    assert_eq!(
        (code.kind, code.system.as_str()),
        (Kind::NoDevice, "DEV_DESC_MISMATCH")
    );
    // Every call carried its own transaction ID.
    let ids: std::collections::HashSet<String> = standin
        .requests()
        .await
        .iter()
        .map(|r| {
            r["body"]["transaction_id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 6);
}

#[tokio::test]
async fn forged_answers_and_a_wrong_key_are_refused() {
    let standin = Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await;
    let client = standin.client();
    let wrong_key = Client::new(Settings {
        key: SpKey::new([9; 32]),
        ..standin.settings()
    })
    .expect("client");
    let code = refused(
        wrong_key
            .get_sp_ticket(HOLDER, &challenge())
            .await
            .expect("ATH-01"),
    );
    assert_eq!(
        (code.kind, code.system.as_str()),
        (Kind::Rejected, "INV_SP_CHECKSUM")
    );

    let ticket = issued(
        client
            .get_sp_ticket(HOLDER, &challenge())
            .await
            .expect("ATH-01"),
    );
    standin
        .control("approve", json!({"sp_ticket_id": ticket.sp_ticket_id}))
        .await;
    standin.control("break", json!({"on": true})).await;
    assert!(matches!(
        client.get_ath_or_sign_result(&ticket).await,
        Err(Error::Checksum)
    ));
    assert!(matches!(
        client.get_sp_ticket(HOLDER, &challenge()).await,
        Err(Error::Checksum)
    ));
    assert!(matches!(
        client.check_device_status(HOLDER).await,
        Err(Error::Checksum)
    ));
    // A forged body is final for the driver, not retried until the deadline.
    let ticket = {
        standin.control("break", json!({"on": false})).await;
        issued(
            client
                .get_sp_ticket(HOLDER, &challenge())
                .await
                .expect("ATH-01"),
        )
    };
    standin
        .control("approve", json!({"sp_ticket_id": ticket.sp_ticket_id}))
        .await;
    standin.control("break", json!({"on": true})).await;
    let outcome = client
        .wait_for_result(
            &ticket,
            client.deadline(Instant::now()),
            Duration::from_secs(4),
        )
        .await;
    assert!(matches!(outcome, Err(Error::Checksum)), "{outcome:?}");
}

#[tokio::test]
async fn a_swapped_certificate_names_someone_else() {
    let standin = Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await;
    let client = standin.client();
    let challenge = challenge();
    let ticket = issued(
        client
            .get_sp_ticket(HOLDER, &challenge)
            .await
            .expect("ATH-01"),
    );
    standin
        .control(
            "certificate",
            json!({"id_num": HOLDER, "person": "stranger"}),
        )
        .await;
    standin
        .control("approve", json!({"sp_ticket_id": ticket.sp_ticket_id}))
        .await;
    let ResultOutcome::Done(signed) = client
        .get_ath_or_sign_result(&ticket)
        .await
        .expect("ATH-02")
    else {
        panic!("not done");
    };
    let certificate = signed.certificate.expect("cert");
    let (trust, crls) = standin.trust();
    let policy = Policy {
        now_unix: 1_767_312_000,
        required_policy_oids: Vec::new(),
        crl_grace_secs: 0,
    };
    let pkcs1 = SignedChallenge::Pkcs1 {
        signature: &signed.signature,
        certificate_der: &certificate,
    };
    let verified = verify(&pkcs1, challenge.tbs(), &trust, &crls, &policy).expect("verifies");
    // The last-four attribute is what tells the typed ID and the certificate apart.
    assert_eq!(verified.id_last4.as_deref(), Some(&STRANGER[6..]));
    assert_ne!(verified.id_last4.as_deref(), Some(&HOLDER[6..]));
}

#[tokio::test]
async fn moi_down_or_slow_is_a_transport_error() {
    let standin = Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await;
    // A closed port: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let down = Client::new(Settings {
        api_url: format!("http://{addr}"),
        ..standin.settings()
    })
    .expect("client");
    let error = down
        .get_sp_ticket(HOLDER, &challenge())
        .await
        .expect_err("down");
    assert!(
        matches!(error, Error::Transport(_)) && error.is_transient(),
        "{error:?}"
    );
    // The driver retries until its deadline, then reports the transport error.
    let ticket = issued(
        standin
            .client()
            .get_sp_ticket(HOLDER, &challenge())
            .await
            .expect("ATH-01"),
    );
    let outcome = down
        .wait_for_result(
            &ticket,
            Instant::now() + Duration::from_secs(9),
            Duration::from_secs(4),
        )
        .await;
    assert!(matches!(outcome, Err(Error::Transport(_))), "{outcome:?}");

    standin.control("delay", json!({"ms": 3000})).await;
    let slow = Client::new(Settings {
        request_timeout: Duration::from_millis(300),
        ..standin.settings()
    })
    .expect("client");
    let error = slow.check_device_status(HOLDER).await.expect_err("slow");
    assert!(
        matches!(error, Error::Transport(_)) && error.is_transient(),
        "{error:?}"
    );
    // Nothing in an error names the key.
    assert!(
        !format!("{error} {error:?} {:?}", slow.settings())
            .contains(&URL_SAFE_NO_PAD.encode(standin.key))
    );
}
