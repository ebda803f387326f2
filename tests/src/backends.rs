//! Real storage for each test: a SQLite file or a PostgreSQL database of its own, and Redis
//! with a key prefix of its own (or a private `redis-server` a test may kill). Everything is
//! removed when the value is dropped; the shared servers are never flushed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, unique};

/// Which SQL backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sql {
    Sqlite,
    Postgres,
}

pub struct Database {
    pub url: String,
    pg_name: Option<String>,
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .output()
        .expect("psql must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Database {
    pub fn create(kind: Sql, dir: &Path) -> Database {
        match kind {
            Sql::Sqlite => Database {
                url: format!("sqlite://{}", dir.join("menshen.db").display()),
                pg_name: None,
            },
            Sql::Postgres => {
                let name = unique("menshen_test_");
                psql(&format!("CREATE DATABASE {name}"));
                Database {
                    url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The shared Redis on 127.0.0.1:6379 with a prefix only this test uses.
pub struct RedisPrefix {
    pub url: String,
    pub prefix: String,
}

impl RedisPrefix {
    pub fn new() -> RedisPrefix {
        RedisPrefix {
            url: "redis://127.0.0.1:6379/0".into(),
            prefix: unique("menshen-test-") + ":",
        }
    }

    /// Keys under this test's prefix.
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).expect("redis url");
        let mut conn = client
            .get_connection()
            .expect("redis on 127.0.0.1:6379 must run");
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .expect("KEYS")
    }
}

impl Default for RedisPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(self.url.as_str())
            && let Ok(mut conn) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
    }
}

/// A `redis-server` of this test's own, so the test can stop it.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    /// Where a persistent server keeps its append-only file.
    data: Option<tempfile::TempDir>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = free_port();
        PrivateRedis {
            port,
            child: Some(spawn_redis(port, None)),
            data: None,
        }
    }

    /// A private server that keeps its data when stopped and started again (an append-only
    /// file written through on every command, as a production Redis with persistence would).
    pub fn start_persistent() -> PrivateRedis {
        let port = free_port();
        let data = tempfile::tempdir().expect("redis data dir");
        PrivateRedis {
            port,
            child: Some(spawn_redis(port, Some(data.path()))),
            data: Some(data),
        }
    }

    /// Starts the server again on the same port after [`PrivateRedis::stop`] (with its data
    /// when it is persistent).
    pub fn restart(&mut self) {
        self.stop();
        let dir = self.data.as_ref().map(|d| d.path().to_path_buf());
        self.child = Some(spawn_redis(self.port, dir.as_deref()));
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Freezes the server (SIGSTOP): its connections stay open but nothing is answered, as
    /// with a hung host or a network partition.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT), with its data.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `redis-server` on `port` (persisting to `data` when given) and waits until it listens.
fn spawn_redis(port: u16, data: Option<&Path>) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ]);
    match data {
        None => cmd.args(["--appendonly", "no"]),
        Some(dir) => cmd
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir),
    };
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test installs it)");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
