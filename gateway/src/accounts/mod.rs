//! The account store: who may log in, with which roles, and their password hash.
//!
//! Accounts live in SQL: a SQLite file by default, PostgreSQL when several gateway instances
//! share them. One implementation serves both through sqlx's `Any` driver; the schema is one
//! list of migrations ([`migrations`]). Login names are unique case-insensitively: the
//! `login_key` column holds the canonical form (`menshen_policies::canonical_login_name`).

pub mod migrations;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::Duration;

use crate::random;
use migrations::MIGRATIONS;

/// Roles the product knows about. `aa` is the school administrator (學校管理者) account.
pub const KNOWN_ROLES: &[&str] = &["aa", "staff"];

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub login_name: String,
    pub display_name: String,
    pub school_code: String,
    pub roles: Vec<String>,
    pub email: String,
    /// argon2id PHC string; never logged or shown.
    pub password_hash: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Account {
    pub fn is_aa(&self) -> bool {
        self.roles.iter().any(|r| r == "aa")
    }
}

/// What is needed to create an account (the password already hashed).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login_name: String,
    pub display_name: String,
    pub school_code: String,
    pub roles: Vec<String>,
    pub email: String,
    pub password_hash: String,
}

/// Why a new account could not be stored, as a value the CLI reports per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Added(String),
    NameTaken,
}

/// The SQL account store.
#[derive(Clone)]
pub struct AccountStore {
    pool: AnyPool,
    postgres: bool,
}

const SELECT_ACCOUNT: &str = "SELECT id, login_name, display_name, school_code, roles, email, \
     password_hash, enabled, created_at, updated_at FROM accounts";

impl AccountStore {
    /// Connects to `url` (`sqlite:…` or `postgres://…`), creating a SQLite file when missing,
    /// and brings the schema up to date.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let postgres = url.starts_with("postgres:") || url.starts_with("postgresql:");
        let url = if !postgres && !url.contains("mode=") {
            // sqlx opens SQLite read-write but does not create the file unless asked.
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if postgres { 8 } else { 4 })
            .acquire_timeout(Duration::from_secs(3))
            .connect(&url)
            .await
            .with_context(|| format!("cannot open the account database {}", redact_url(&url)))?;
        let store = AccountStore { pool, postgres };
        if !postgres {
            // WAL lets the gateway read while the CLI writes; busy_timeout waits for locks
            // instead of failing at once.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&store.pool)
                .await?;
            sqlx::query("PRAGMA busy_timeout=5000")
                .execute(&store.pool)
                .await?;
        }
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS menshen_schema (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .context("cannot create the schema table")?;
        for m in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM menshen_schema WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            let statements = match (self.postgres, m.postgres) {
                (true, Some(pg)) => pg,
                _ => m.sqlite,
            };
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(*statement))
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("migration {} ({})", m.version, m.description))?;
            }
            sqlx::query(
                "INSERT INTO menshen_schema (version, description, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.description)
            .bind(crate::clock::now_secs() as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Cheap liveness probe used to fail closed when the database is gone.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn find_by_login(&self, login_name: &str) -> anyhow::Result<Option<Account>> {
        let key = menshen_policies::canonical_login_name(login_name);
        let sql = const_format_select("WHERE login_key = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    pub async fn find_by_id(&self, id: &str) -> anyhow::Result<Option<Account>> {
        let sql = const_format_select("WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    pub async fn list(&self) -> anyhow::Result<Vec<Account>> {
        let sql = const_format_select("ORDER BY login_key");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Ids of disabled accounts: the gateway polls this to end their sessions everywhere.
    pub async fn disabled_ids(&self) -> anyhow::Result<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE enabled = 0")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    pub async fn add(&self, new: &NewAccount, now: i64) -> anyhow::Result<AddOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = add_in(&mut tx, new, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Adds every account or none: the import is refused whole when any row is refused, so an
    /// operator never has to work out which half of a file went in.
    pub async fn add_all(&self, new: &[NewAccount], now: i64) -> anyhow::Result<Vec<AddOutcome>> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(new.len());
        for account in new {
            outcomes.push(add_in(&mut tx, account, now).await?);
        }
        if outcomes.iter().all(|o| matches!(o, AddOutcome::Added(_))) {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(outcomes)
    }

    /// Returns false when no such account exists.
    pub async fn set_enabled(
        &self,
        login_name: &str,
        enabled: bool,
        now: i64,
    ) -> anyhow::Result<bool> {
        let key = menshen_policies::canonical_login_name(login_name);
        let done =
            sqlx::query("UPDATE accounts SET enabled = $1, updated_at = $2 WHERE login_key = $3")
                .bind(i64::from(enabled))
                .bind(now)
                .bind(key)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Returns false when no such account exists.
    pub async fn set_password_hash(
        &self,
        login_name: &str,
        hash: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        let key = menshen_policies::canonical_login_name(login_name);
        let done = sqlx::query(
            "UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE login_key = $3",
        )
        .bind(hash.to_string())
        .bind(now)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn add_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    new: &NewAccount,
    now: i64,
) -> anyhow::Result<AddOutcome> {
    let key = menshen_policies::canonical_login_name(&new.login_name);
    let taken: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE login_key = $1")
        .bind(key.clone())
        .fetch_optional(&mut **tx)
        .await?;
    if taken.is_some() {
        return Ok(AddOutcome::NameTaken);
    }
    let id = random::token();
    sqlx::query(
        "INSERT INTO accounts (id, login_name, login_key, display_name, school_code, roles, \
         email, password_hash, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
    )
    .bind(id.clone())
    .bind(new.login_name.trim().to_string())
    .bind(key)
    .bind(new.display_name.clone())
    .bind(new.school_code.clone())
    .bind(new.roles.join(","))
    .bind(new.email.clone())
    .bind(new.password_hash.clone())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(AddOutcome::Added(id))
}

fn const_format_select(tail: &str) -> String {
    format!("{SELECT_ACCOUNT} {tail}")
}

fn account_from_row(row: &AnyRow) -> anyhow::Result<Account> {
    let roles: String = row.try_get("roles")?;
    Ok(Account {
        id: row.try_get("id")?,
        login_name: row.try_get("login_name")?,
        display_name: row.try_get("display_name")?,
        school_code: row.try_get("school_code")?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A database URL fit for an error message: the password, if any, is replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(redact_url("sqlite://menshen.db"), "sqlite://menshen.db");
    }
}
