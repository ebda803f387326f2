//! The schema, as one ordered list of migrations shared by SQLite and PostgreSQL.
//!
//! Most statements are portable; where the two dialects differ a statement carries both
//! forms. Times are Unix seconds in BIGINT columns and booleans are 0/1 BIGINTs, so the same
//! queries and bindings work on both backends through sqlx's `Any` driver.

/// One step of the schema, applied in one transaction.
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub statements: &'static [Statement],
}

/// A statement both dialects accept as it is, or the two forms of one that differs.
pub enum Statement {
    Both(&'static str),
    Dialect {
        sqlite: &'static str,
        postgres: &'static str,
    },
}

impl Statement {
    pub fn text(&self, postgres: bool) -> &'static str {
        match self {
            Statement::Both(sql) => sql,
            Statement::Dialect {
                sqlite,
                postgres: pg,
            } => {
                if postgres {
                    pg
                } else {
                    sqlite
                }
            }
        }
    }
}

use Statement::{Both, Dialect};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "accounts",
        statements: &[
            Both(
                "CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            login_name TEXT NOT NULL,
            login_key TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            school_code TEXT NOT NULL,
            roles TEXT NOT NULL,
            email TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            enabled BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            ),
            Both("CREATE INDEX accounts_enabled ON accounts (enabled)"),
        ],
    },
    Migration {
        version: 2,
        description: "second factors and the activity log",
        statements: &[
            Both("ALTER TABLE accounts ADD COLUMN unlocked_at BIGINT NOT NULL DEFAULT 0"),
            // One OTP binding per account; last_step makes every code usable once (a
            // conditional UPDATE is atomic across gateway instances).
            Both(
                "CREATE TABLE otp_bindings (
                account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
                sealed_secret TEXT NOT NULL,
                last_step BIGINT NOT NULL,
                created_at BIGINT NOT NULL
            )",
            ),
            Both(
                "CREATE TABLE certificate_bindings (
                account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
                issuer TEXT NOT NULL,
                serial TEXT NOT NULL,
                spki_sha256 TEXT NOT NULL,
                subject_name TEXT NOT NULL,
                id_last4 TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )",
            ),
            // The one difference between the dialects: how a row number is generated.
            Dialect {
                sqlite: "CREATE TABLE activity (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                         account_id TEXT, login_name TEXT NOT NULL, login_key TEXT NOT NULL, \
                         event TEXT NOT NULL, method TEXT NOT NULL, outcome TEXT NOT NULL, \
                         client_ip TEXT NOT NULL, user_agent TEXT NOT NULL, detail TEXT NOT NULL, \
                         at BIGINT NOT NULL)",
                postgres: "CREATE TABLE activity (id BIGSERIAL PRIMARY KEY, \
                         account_id TEXT, login_name TEXT NOT NULL, login_key TEXT NOT NULL, \
                         event TEXT NOT NULL, method TEXT NOT NULL, outcome TEXT NOT NULL, \
                         client_ip TEXT NOT NULL, user_agent TEXT NOT NULL, detail TEXT NOT NULL, \
                         at BIGINT NOT NULL)",
            },
            Both("CREATE INDEX activity_login ON activity (login_key, id)"),
        ],
    },
    Migration {
        version: 3,
        description: "OpenID Connect bindings",
        // One external account (issuer + subject) binds to at most one Menshen account; an
        // account has at most one binding per provider. Identity is never keyed on email.
        statements: &[Both(
            "CREATE TABLE oidc_bindings (
            account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            provider TEXT NOT NULL,
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            claim TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (account_id, provider),
            UNIQUE (issuer, subject)
        )",
        )],
    },
    Migration {
        version: 4,
        description: "one certificate binds to one account",
        // A card certificate (issuer + serial) is bound to at most one account; the login
        // looks it up by these columns.
        statements: &[Both(
            "CREATE UNIQUE INDEX certificate_bindings_cert ON certificate_bindings (issuer, serial)",
        )],
    },
    Migration {
        version: 5,
        description: "sessions ended by operator actions",
        // Sessions that began before this time are void (password or binding reset by the
        // support desk): every instance learns it from the database, with or without Redis.
        statements: &[Both(
            "ALTER TABLE accounts ADD COLUMN sessions_not_before BIGINT NOT NULL DEFAULT 0",
        )],
    },
    Migration {
        version: 6,
        description: "last four digits of the national ID",
        // Compared with a citizen certificate's subject directory attribute when the
        // operator requires the certificate to match the account's record; empty = unknown.
        statements: &[Both(
            "ALTER TABLE accounts ADD COLUMN id_last4 TEXT NOT NULL DEFAULT ''",
        )],
    },
    Migration {
        version: 7,
        description: "mobile citizen certificate bindings",
        // One national ID binds to one account: `id_hash` is a keyed hash of it
        // (`<key id>.<hex>`, see `Keyring::keyed_hashes`), never the ID in clear. The
        // certificate's issuer, issuing-CA key id and serial are kept for the account pages
        // and the activity log; a renewed certificate in the app does not need a re-binding.
        statements: &[Both(
            "CREATE TABLE mobile_bindings (
            account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
            id_hash TEXT NOT NULL UNIQUE,
            issuer TEXT NOT NULL,
            issuer_key_id TEXT NOT NULL,
            serial TEXT NOT NULL,
            subject_name TEXT NOT NULL,
            id_last4 TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        )],
    },
];
