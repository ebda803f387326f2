//! The TW FidO stand-in (`twfido-standin`) as a running process: started on a free port with
//! its files in a temporary directory, its test controls, and the configuration fragment it
//! writes (`[certificate]` + `[mobile_certificate]`) for a gateway.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::client::client_builder;

/// A running stand-in, killed on drop.
pub struct Standin {
    _child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub sp_service_id: String,
    pub key: [u8; 32],
    pub http: reqwest::Client,
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Standin {
    /// Starts the binary at `exe` (`env!("CARGO_BIN_EXE_twfido-standin")` in a test).
    pub async fn start(exe: &str) -> Standin {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(Path::new(exe))
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn twfido-standin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(300), stdout.next_line())
            .await
            .expect("twfido-standin did not start")
            .expect("read stdout")
            .expect("twfido-standin exited before listening");
        let base = line
            .strip_prefix("twfido-standin listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        let fragment: toml::Table =
            std::fs::read_to_string(dir.path().join("mobile-certificate.toml"))
                .expect("fragment")
                .parse()
                .expect("fragment is TOML");
        let mobile = fragment["mobile_certificate"].as_table().expect("table");
        assert_eq!(mobile["api_url"].as_str(), Some(base.as_str()));
        assert!(fragment["certificate"]["trust_anchors"].is_array());
        let key = URL_SAFE_NO_PAD
            .decode(mobile["aes_key"].as_str().expect("aes_key"))
            .expect("base64url key");
        Standin {
            _child: child,
            base,
            sp_service_id: mobile["sp_service_id"].as_str().expect("id").to_owned(),
            key: key.try_into().expect("32 bytes"),
            dir,
            http: client_builder().build().expect("client"),
            _stdout: stdout,
        }
    }

    /// Posts a test control (`approve`, `decline`, `break`, …); panics unless it worked.
    pub async fn control(&self, path: &str, body: Value) {
        let resp = self
            .http
            .post(format!("{}/_standin/{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control request");
        assert_eq!(
            resp.status(),
            200,
            "{path}: {}",
            resp.text().await.unwrap_or_default()
        );
    }

    /// The API requests the stand-in has seen (without checksums).
    pub async fn requests(&self) -> Vec<Value> {
        let state: Value = self
            .http
            .get(format!("{}/_standin/state", self.base))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("state JSON");
        state["requests"].as_array().expect("requests").clone()
    }

    /// A file the stand-in wrote.
    pub fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).expect(name)
    }

    /// The `[certificate]` and `[mobile_certificate]` tables for a gateway's config.
    pub fn fragment(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mobile-certificate.toml")).expect("fragment")
    }

    /// The tickets the stand-in has issued, oldest first: `(sp_ticket_id, id_num)`.
    pub async fn tickets(&self) -> Vec<(String, String)> {
        let state: Value = self
            .http
            .get(format!("{}/_standin/state", self.base))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("state JSON");
        state["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .map(|t| {
                (
                    t["sp_ticket_id"].as_str().unwrap_or("").to_owned(),
                    t["id_num"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}
