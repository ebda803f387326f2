//! The schema, as one ordered list of migrations shared by SQLite and PostgreSQL.
//!
//! Most statements are portable; where the two dialects differ a migration carries both
//! forms. Times are Unix seconds in BIGINT columns and booleans are 0/1 BIGINTs, so the same
//! queries and bindings work on both backends through sqlx's `Any` driver.

/// One step of the schema. `postgres` is `None` when `sqlite` is portable as it is.
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sqlite: &'static [&'static str],
    pub postgres: Option<&'static [&'static str]>,
}

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "accounts",
    sqlite: &[
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
        "CREATE INDEX accounts_enabled ON accounts (enabled)",
    ],
    postgres: None,
}];
