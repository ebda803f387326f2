//! A real SMTP server for the mail tests: `tests/smtp/server.py` (Python's `aiosmtpd` from
//! PyPI, installed by `scripts/setup` into `tests/smtp/.venv`) on a loopback port. It writes
//! each message it receives, parsed by Python's `email` package, as a JSON file; the tests
//! read those to see what a person would find in their mailbox.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::free_port;

/// One received message, as the Python `email` package parsed it.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    /// Decoded (RFC 2047 undone).
    pub subject: String,
    /// The header block as sent (encoded words and all).
    pub raw_headers: String,
    pub date: String,
    pub message_id: String,
    pub content_type: String,
    /// Content types of every MIME part, depth first.
    pub structure: Vec<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// What the parser found wrong; a well-formed message has none.
    pub defects: Vec<String>,
}

pub struct TestSmtp {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("smtp/.venv/bin/python3");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/setup (it installs aiosmtpd for the mail tests)",
        venv.display()
    );
    venv
}

impl TestSmtp {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> TestSmtp {
        let dir = tempfile::tempdir().expect("mail dir");
        let port = free_port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the test SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the SMTP server's first line");
        assert_eq!(line.trim(), "ready", "the test SMTP server did not start");
        TestSmtp { port, dir, child }
    }

    /// `smtp_url` for `[mail]`: plain SMTP, which Menshen allows only on loopback.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// A `[mail]` table sending through this server.
    pub fn mail_table(&self, link_base: Option<&str>) -> String {
        let link = link_base
            .map(|b| format!("link_base = \"{b}\"\n"))
            .unwrap_or_default();
        format!(
            "[mail]\nfrom = \"門神 Menshen <noreply@school.example>\"\nsmtp_url = \"{}\"\ntimeout = \"5s\"\n{link}",
            self.url()
        )
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("mail file");
                serde_json::from_str(&text).expect("mail json")
            })
            .collect()
    }

    /// Messages to `address`.
    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits until `address` has received `n` messages (the gateway sends in the
    /// background) and returns them.
    pub async fn wait_for(&self, address: &str, n: usize) -> Vec<Mail> {
        crate::eventually(
            Duration::from_secs(20),
            &format!("{n} mails to {address}"),
            || {
                let got = self.to(address).len();
                async move { got >= n }
            },
        )
        .await;
        self.to(address)
    }
}

impl TestSmtp {
    /// Waits until `address` has received `n` messages with this subject and returns those.
    pub async fn wait_for_subject(&self, address: &str, subject: &str, n: usize) -> Vec<Mail> {
        let of = || {
            self.to(address)
                .into_iter()
                .filter(|m| m.subject == subject)
                .collect::<Vec<_>>()
        };
        crate::eventually(
            Duration::from_secs(20),
            &format!("{n} mails \"{subject}\" to {address}"),
            || {
                let got = of().len();
                async move { got >= n }
            },
        )
        .await;
        of()
    }
}

/// The reset link in a mail's text part.
pub fn reset_link(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.contains("/.menshen/password/reset?token="))
        .map(|w| w.trim_end_matches(['.', ')', '>']).to_string())
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
