//! Runs the real `menshen` binary for a test: writes its config, seeds accounts through the
//! real CLI, starts `menshen run` on a free port and stops it when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::backends::{Database, RedisPrefix, Sql};
use crate::{free_port, menshen_bin};

/// Where sessions live for this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// In-process (no Redis configured).
    Memory,
    /// The shared Redis, under a prefix of this test's own.
    SharedRedis,
    /// A Redis at this URL (a private server, or a closed port to see failure).
    RedisUrl(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub sql: Sql,
    pub store: Store,
    pub idle: String,
    pub absolute: String,
    /// TOML appended inside the `[[site]]` table (more rules, header names).
    pub site_extra: String,
    /// Serve HTTPS with this certificate and key (PEM files) instead of plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub metrics: bool,
    /// Extra hosts for the site besides 127.0.0.1 and localhost.
    pub hosts: Vec<String>,
    /// `insecure_dev_cookie`; by default on for plain HTTP, off for TLS.
    pub insecure_dev_cookie: Option<bool>,
    /// `[captcha] mode`; tests that are not about the captcha turn it off.
    pub captcha: &'static str,
    /// Extra top-level TOML (`[lockout]` settings, `[[oidc]]` providers), before the site.
    pub extra: String,
    /// Listen on this port (when something must know it before the gateway starts).
    pub port: Option<u16>,
    /// TOML appended after the site (more `[[site]]` tables, `[portal]`).
    pub extra_sites: String,
    /// Listen on this address instead of `127.0.0.1` (`[::]`: a dual-stack listener, where
    /// IPv4 clients arrive as IPv4-mapped IPv6 addresses).
    pub listen_host: Option<&'static str>,
    /// The keys of the `[login]` table (the password-hashing pool's size and queue).
    pub login: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sql: Sql::Sqlite,
            store: Store::Memory,
            idle: "30m".into(),
            absolute: "8h".into(),
            site_extra: String::new(),
            tls: None,
            metrics: false,
            hosts: vec!["app.test".into()],
            insecure_dev_cookie: None,
            captcha: "off",
            extra: String::new(),
            port: None,
            extra_sites: String::new(),
            listen_host: None,
            login: "argon2_max_concurrent = 2\n".into(),
        }
    }
}

/// The OTP keyring of every test gateway (a fixed test key: it protects nothing real).
pub const OTP_KEYS: &str = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub struct Gateway {
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub tls: bool,
    child: Option<Child>,
    pub redis: Option<RedisPrefix>,
    _db: Database,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts a gateway in front of `upstream` with these accounts already added
    /// (login name, roles, password).
    pub async fn start(
        opts: Options,
        upstream: SocketAddr,
        accounts: &[(&str, &str, &str)],
    ) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Database::create(opts.sql, dir.path());
        let port = opts.port.unwrap_or_else(free_port);
        let metrics_port = opts.metrics.then(free_port);
        let redis = (opts.store == Store::SharedRedis).then(RedisPrefix::new);
        let store_toml = match (&opts.store, &redis) {
            (Store::SharedRedis, Some(r)) => {
                format!("redis = \"{}\"\nredis_prefix = \"{}\"\n", r.url, r.prefix)
            }
            (Store::RedisUrl(url), _) => {
                format!("redis = \"{url}\"\nredis_prefix = \"menshen-test:\"\n")
            }
            _ => String::new(),
        };
        let listen_host = opts.listen_host.unwrap_or("127.0.0.1");
        let listen = match &opts.tls {
            None => format!("[[listen]]\naddress = \"{listen_host}:{port}\"\n"),
            Some((cert, key)) => format!(
                "[[listen]]\naddress = \"{listen_host}:{port}\"\ntls = {{ certificate = \"{}\", key = \"{}\" }}\n",
                cert.display(),
                key.display()
            ),
        };
        let metrics = metrics_port
            .map(|p| format!("[metrics]\naddress = \"127.0.0.1:{p}\"\n"))
            .unwrap_or_default();
        let mut hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        hosts.extend(opts.hosts.iter().cloned());
        let hosts = hosts
            .iter()
            .map(|h| format!("\"{h}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            r#"{listen}
{metrics}
[session]
idle_timeout = "{idle}"
absolute_timeout = "{absolute}"
insecure_dev_cookie = {dev}

[store]
database = "{database}"
{store_toml}
[login]
{login}
[captcha]
mode = "{captcha}"

[otp]
issuer = "Menshen test"
keys = "{otp_keys}"

{extra}

[[site]]
name = "app"
hosts = [{hosts}]
upstreams = ["{upstream}"]
{site_extra}

[[site.rule]]
path = "/public/"
access = "anonymous"

[[site.rule]]
path = "/admin/"
access = "roles"
roles = ["aa"]

[[site.rule]]
path = "/blocked/"
access = "deny"

{extra_sites}
"#,
            idle = opts.idle,
            absolute = opts.absolute,
            dev = opts.insecure_dev_cookie.unwrap_or(opts.tls.is_none()),
            database = db.url,
            site_extra = opts.site_extra,
            captcha = opts.captcha,
            otp_keys = OTP_KEYS,
            extra = opts.extra,
            extra_sites = opts.extra_sites,
            login = opts.login,
        );
        let config_path = dir.path().join("menshen.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log_path = dir.path().join("menshen.log");
        let mut gw = Gateway {
            port,
            metrics_port,
            config_path,
            log_path,
            tls: opts.tls.is_some(),
            child: None,
            redis,
            _db: db,
            _dir: dir,
        };
        for (name, roles, password) in accounts {
            gw.add_account(name, roles, password);
        }
        gw.spawn().await;
        gw
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log_path).expect("log file");
        let child = Command::new(menshen_bin())
            .args(["run", "--config"])
            .arg(&self.config_path)
            .env("MENSHEN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start menshen");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                // Someone listens; make sure it is this process and not another test's that
                // took the same free port first (ours would then have exited).
                tokio::time::sleep(Duration::from_millis(150)).await;
                if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                    panic!("menshen exited with {status}:\n{}", self.log());
                }
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "menshen exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "menshen did not listen in time:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs one SQL query against this gateway's database with the real client (`sqlite3` or
    /// `psql`) and returns its output, rows separated by newlines, columns by `|`.
    pub fn sql(&self, query: &str) -> String {
        let url = &self._db.url;
        let out = if let Some(path) = url.strip_prefix("sqlite://") {
            Command::new("sqlite3").arg(path).arg(query).output()
        } else {
            Command::new("psql")
                .args(["-qtA", url, "-c", query])
                .output()
        }
        .expect("sqlite3/psql must be installed (scripts/setup installs them)");
        assert!(
            out.status.success(),
            "sql {query:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The gateway's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn base(&self) -> String {
        format!(
            "{}://127.0.0.1:{}",
            if self.tls { "https" } else { "http" },
            self.port
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    /// Runs `menshen account --config <this config> ARGS`, feeding `stdin`.
    pub fn account_cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        cli_with_stdin(
            &[
                &[
                    "account",
                    "--config",
                    self.config_path.to_str().expect("utf-8 path"),
                ],
                args,
            ]
            .concat(),
            stdin,
        )
    }

    pub fn add_account(&self, name: &str, roles: &str, password: &str) {
        let out = self.account_cli(
            &[
                "add",
                name,
                "--display-name",
                "王小明",
                "--school",
                "123456",
                "--roles",
                roles,
                "--email",
                "t@example.org",
                "--password-stdin",
            ],
            Some(password),
        );
        assert!(
            out.status.success(),
            "account add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The answer of the captcha on a page (its hidden `captcha_id`), read from this
    /// gateway's Redis keys as only the server can; needs `Store::SharedRedis`.
    pub fn captcha_answer(&self, body: &str) -> (String, String) {
        let id = crate::client::hidden_value(body, "captcha_id").expect("captcha on the page");
        let redis = self
            .redis
            .as_ref()
            .expect("a Redis prefix (Store::SharedRedis)");
        let client = redis::Client::open(redis.url.as_str()).expect("url");
        let mut conn = client.get_connection().expect("redis");
        let answer: String = redis::cmd("GET")
            .arg(format!("{}cap:{id}", redis.prefix))
            .query(&mut conn)
            .expect("answer");
        (id, answer)
    }

    /// Starts another `menshen run` with this gateway's config file (as it is on disk now) on
    /// a port of its own: a second instance sharing the same database and Redis prefix.
    pub async fn sibling(&self) -> Sibling {
        let port = free_port();
        let config = std::fs::read_to_string(&self.config_path).expect("config");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sibling.toml");
        std::fs::write(
            &path,
            config.replace(
                &format!("127.0.0.1:{}", self.port),
                &format!("127.0.0.1:{port}"),
            ),
        )
        .expect("write");
        let child = Command::new(menshen_bin())
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sibling");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the second instance did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Sibling {
            port,
            child,
            _dir: dir,
        }
    }

    /// Stops the process (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A second gateway instance; stopped when dropped.
pub struct Sibling {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sibling {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `menshen` binary with `args`, feeding `stdin` when given.
pub fn cli_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(menshen_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run menshen");
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
        let _ = pipe.write_all(text.as_bytes());
    }
    child.wait_with_output().expect("menshen output")
}
