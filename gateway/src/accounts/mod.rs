//! The account store: who may log in, with which roles, and their password hash.
//!
//! Accounts live in SQL: a SQLite file by default, PostgreSQL when several gateway instances
//! share them. One implementation serves both through sqlx's `Any` driver; the schema is one
//! list of migrations ([`migrations`]). Login names are unique case-insensitively: the
//! `login_key` column holds the canonical form (`menshen_policies::canonical_login_name`).

pub mod migrations;
mod mobile;

pub use mobile::{MobileBindOutcome, MobileBinding};

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
    /// When an operator last lifted this account's suspensions (0 = never).
    pub unlocked_at: i64,
    pub otp_bound: bool,
    pub certificate_bound: bool,
    /// A mobile citizen certificate (行動自然人憑證) is bound.
    pub mobile_bound: bool,
    /// Last four digits of the holder's national ID, when the school's record has them
    /// (empty otherwise); checked against the card when identity matching is required.
    pub id_last4: String,
}

impl Account {
    pub fn is_aa(&self) -> bool {
        self.roles.iter().any(|r| r == "aa")
    }

    /// A citizen certificate signs in for this account: the card or the mobile app.
    pub fn certificate_method_bound(&self) -> bool {
        self.certificate_bound || self.mobile_bound
    }

    /// Some second factor is bound (what the manual requires before anything else binds).
    pub fn second_factor_bound(&self) -> bool {
        self.otp_bound || self.certificate_method_bound()
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
    /// Empty or four digits.
    pub id_last4: String,
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
     password_hash, enabled, created_at, updated_at, unlocked_at, id_last4, \
     (SELECT COUNT(*) FROM otp_bindings o WHERE o.account_id = accounts.id) AS otp_count, \
     (SELECT COUNT(*) FROM certificate_bindings c WHERE c.account_id = accounts.id) AS cert_count, \
     (SELECT COUNT(*) FROM mobile_bindings m WHERE m.account_id = accounts.id) AS mobile_count \
     FROM accounts";

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
            for statement in m.statements {
                sqlx::query(sqlx::AssertSqlSafe(statement.text(self.postgres)))
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
        let sql = select_where("WHERE login_key = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    /// The one account whose address on file is `email` (compared without case); none when
    /// no account or several share it (a reset link must reach exactly one person).
    pub async fn find_by_email(&self, email: &str) -> anyhow::Result<Option<Account>> {
        let email = email.trim();
        if email.is_empty() || !email.contains('@') {
            return Ok(None);
        }
        let sql = select_where("WHERE LOWER(email) = LOWER($1) LIMIT 2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email.to_string())
            .fetch_all(&self.pool)
            .await?;
        match rows.as_slice() {
            [one] => Ok(Some(account_from_row(one)?)),
            _ => Ok(None),
        }
    }

    /// Sets a new password hash. With `void_sessions_before`, sessions of the account that
    /// began at or before that time are void on every instance from the next account poll
    /// (the database's lock behind the session store's own `destroy_account`).
    pub async fn replace_password(
        &self,
        account_id: &str,
        hash: &str,
        now: i64,
        void_sessions_before: Option<i64>,
    ) -> anyhow::Result<bool> {
        let query = match void_sessions_before {
            Some(t) => sqlx::query(
                "UPDATE accounts SET password_hash = $1, updated_at = $2, \
                 sessions_not_before = $3 WHERE id = $4",
            )
            .bind(hash.to_string())
            .bind(now)
            .bind(t),
            None => {
                sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash.to_string())
                    .bind(now)
            }
        };
        let done = query
            .bind(account_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn find_by_id(&self, id: &str) -> anyhow::Result<Option<Account>> {
        let sql = select_where("WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    pub async fn list(&self) -> anyhow::Result<Vec<Account>> {
        let sql = select_where("ORDER BY login_key");
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

    /// What the gateway must know to refuse sessions: disabled accounts, and accounts whose
    /// sessions before some time are void (id → that time).
    pub async fn session_rules(&self) -> anyhow::Result<(Vec<String>, Vec<(String, i64)>)> {
        let disabled = self.disabled_ids().await?;
        let rows = sqlx::query(
            "SELECT id, sessions_not_before FROM accounts WHERE sessions_not_before > 0",
        )
        .fetch_all(&self.pool)
        .await?;
        let not_before = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("sessions_not_before")?)))
            .collect::<anyhow::Result<Vec<(String, i64)>>>()?;
        Ok((disabled, not_before))
    }

    /// Voids every session of the account that began before `now`, on every instance.
    pub async fn end_sessions_before(&self, account_id: &str, now: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE accounts SET sessions_not_before = $1 WHERE id = $2")
            .bind(now)
            .bind(account_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
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

    /// Lifts the account's suspensions: failures before now no longer count.
    pub async fn unlock(&self, login_name: &str, now: i64) -> anyhow::Result<Option<Account>> {
        let key = menshen_policies::canonical_login_name(login_name);
        sqlx::query("UPDATE accounts SET unlocked_at = $1 WHERE login_key = $2")
            .bind(now)
            .bind(key)
            .execute(&self.pool)
            .await?;
        self.find_by_login(login_name).await
    }

    /// The sealed OTP secret and the last accepted time step.
    pub async fn otp_binding(&self, account_id: &str) -> anyhow::Result<Option<(String, i64)>> {
        let row =
            sqlx::query("SELECT sealed_secret, last_step FROM otp_bindings WHERE account_id = $1")
                .bind(account_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok((r.try_get("sealed_secret")?, r.try_get("last_step")?)))
            .transpose()
    }

    /// Binds (or re-binds) OTP. `step` is the step of the code that confirmed the binding, so
    /// that code cannot also be used to log in.
    pub async fn bind_otp(
        &self,
        account_id: &str,
        sealed: &str,
        step: i64,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO otp_bindings (account_id, sealed_secret, last_step, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
             last_step = excluded.last_step, created_at = excluded.created_at",
        )
        .bind(account_id.to_string())
        .bind(sealed.to_string())
        .bind(step)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records `step` as used when it is later than every step used before. Exactly one of
    /// several concurrent calls with the same step returns true, on any number of instances:
    /// the database row is the one place that decides.
    pub async fn consume_otp_step(&self, account_id: &str, step: i64) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE otp_bindings SET last_step = $1 WHERE account_id = $2 AND last_step < $1",
        )
        .bind(step)
        .bind(account_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every sealed OTP secret, for re-sealing under a new key.
    pub async fn all_otp_secrets(&self) -> anyhow::Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT account_id, sealed_secret FROM otp_bindings")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("account_id")?, r.try_get("sealed_secret")?)))
            .collect()
    }

    pub async fn replace_otp_secret(&self, account_id: &str, sealed: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE otp_bindings SET sealed_secret = $1 WHERE account_id = $2")
            .bind(sealed.to_string())
            .bind(account_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes every second-factor binding of an account (the support desk's reset).
    pub async fn reset_bindings(&self, account_id: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM otp_bindings WHERE account_id = $1")
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM certificate_bindings WHERE account_id = $1")
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM oidc_bindings WHERE account_id = $1")
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mobile_bindings WHERE account_id = $1")
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_activity(&self, a: &Activity) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO activity (account_id, login_name, login_key, event, method, outcome, \
             client_ip, user_agent, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(a.account_id.clone())
        .bind(truncate(&a.login_name, 128))
        .bind(truncate(
            &menshen_policies::canonical_login_name(&a.login_name),
            128,
        ))
        .bind(a.event.to_string())
        .bind(a.method.to_string())
        .bind(a.outcome.to_string())
        .bind(a.client_ip.clone())
        .bind(truncate(&a.user_agent, 512))
        .bind(truncate(&a.detail, 256))
        .bind(a.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest activity records of a login name (canonical), newest first.
    pub async fn activity_of(&self, login_name: &str, limit: i64) -> anyhow::Result<Vec<Activity>> {
        let rows = sqlx::query(
            "SELECT account_id, login_name, event, method, outcome, client_ip, user_agent, detail, at \
             FROM activity WHERE login_key = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(menshen_policies::canonical_login_name(login_name))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Activity {
                    account_id: r.try_get("account_id")?,
                    login_name: r.try_get("login_name")?,
                    event: r.try_get("event")?,
                    method: r.try_get("method")?,
                    outcome: r.try_get("outcome")?,
                    client_ip: r.try_get("client_ip")?,
                    user_agent: r.try_get("user_agent")?,
                    detail: r.try_get("detail")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// The account an external identity is bound to.
    pub async fn oidc_account(
        &self,
        issuer: &str,
        subject: &str,
    ) -> anyhow::Result<Option<String>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT account_id FROM oidc_bindings WHERE issuer = $1 AND subject = $2",
        )
        .bind(issuer.to_string())
        .bind(subject.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    /// The provider bindings of an account: (provider id, shown claim).
    pub async fn oidc_bindings_of(
        &self,
        account_id: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT provider, claim FROM oidc_bindings WHERE account_id = $1 ORDER BY provider",
        )
        .bind(account_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("provider")?, r.try_get("claim")?)))
            .collect()
    }

    /// Binds an external identity, replacing the account's earlier binding for the provider.
    /// `Conflict` when the identity is bound to another account (the database constraint
    /// decides, so two racing binds cannot both win).
    pub async fn bind_oidc(
        &self,
        account_id: &str,
        provider: &str,
        issuer: &str,
        subject: &str,
        claim: &str,
        now: i64,
    ) -> anyhow::Result<OidcBindOutcome> {
        if let Some(owner) = self.oidc_account(issuer, subject).await?
            && owner != account_id
        {
            return Ok(OidcBindOutcome::Conflict);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM oidc_bindings WHERE account_id = $1 AND (provider = $2 OR (issuer = $3 AND subject = $4))")
            .bind(account_id.to_string())
            .bind(provider.to_string())
            .bind(issuer.to_string())
            .bind(subject.to_string())
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO oidc_bindings (account_id, provider, issuer, subject, claim, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(account_id.to_string())
        .bind(provider.to_string())
        .bind(issuer.to_string())
        .bind(subject.to_string())
        .bind(claim.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                Ok(OidcBindOutcome::Bound)
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                Ok(OidcBindOutcome::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Returns false when nothing was bound.
    pub async fn unbind_oidc(&self, account_id: &str, provider: &str) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM oidc_bindings WHERE account_id = $1 AND provider = $2")
            .bind(account_id.to_string())
            .bind(provider.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The bound card's holder name, national-ID last four digits and binding time, for
    /// display.
    pub async fn certificate_holder(
        &self,
        account_id: &str,
    ) -> anyhow::Result<Option<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT subject_name, id_last4, created_at FROM certificate_bindings \
             WHERE account_id = $1",
        )
        .bind(account_id.to_string())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Binds (or re-binds: a new card replaces the old one) a certificate to an account.
    /// `Conflict` when the certificate is bound to another account (the unique index on
    /// issuer + serial decides, so two racing binds cannot both win).
    pub async fn bind_certificate(
        &self,
        account_id: &str,
        cert: &CertificateBinding,
        now: i64,
    ) -> anyhow::Result<CertificateBindOutcome> {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT account_id FROM certificate_bindings WHERE issuer = $1 AND serial = $2",
        )
        .bind(cert.issuer.clone())
        .bind(cert.serial_hex.clone())
        .fetch_optional(&self.pool)
        .await?;
        if owner.as_deref().is_some_and(|o| o != account_id) {
            return Ok(CertificateBindOutcome::Conflict);
        }
        let done = sqlx::query(
            "INSERT INTO certificate_bindings (account_id, issuer, serial, spki_sha256, \
             subject_name, id_last4, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (account_id) DO UPDATE SET issuer = excluded.issuer, \
             serial = excluded.serial, spki_sha256 = excluded.spki_sha256, \
             subject_name = excluded.subject_name, id_last4 = excluded.id_last4, \
             created_at = excluded.created_at",
        )
        .bind(account_id.to_string())
        .bind(cert.issuer.clone())
        .bind(cert.serial_hex.clone())
        .bind(cert.spki_sha256_hex.clone())
        .bind(cert.subject_name.clone())
        .bind(cert.id_last4.clone())
        .bind(now)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(CertificateBindOutcome::Bound),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Ok(CertificateBindOutcome::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account a certificate is bound to: issuer, serial and key must all match, so a
    /// renewed card (new serial or key) must be bound again.
    pub async fn account_by_certificate(
        &self,
        issuer: &str,
        serial_hex: &str,
        spki_sha256_hex: &str,
    ) -> anyhow::Result<Option<String>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT account_id FROM certificate_bindings \
             WHERE issuer = $1 AND serial = $2 AND spki_sha256 = $3",
        )
        .bind(issuer.to_string())
        .bind(serial_hex.to_string())
        .bind(spki_sha256_hex.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
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
         email, password_hash, enabled, created_at, updated_at, id_last4) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10)",
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
    .bind(new.id_last4.clone())
    .execute(&mut **tx)
    .await?;
    Ok(AddOutcome::Added(id))
}

fn select_where(tail: &str) -> String {
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
        unlocked_at: row.try_get("unlocked_at")?,
        otp_bound: row.try_get::<i64, _>("otp_count")? > 0,
        certificate_bound: row.try_get::<i64, _>("cert_count")? > 0,
        mobile_bound: row.try_get::<i64, _>("mobile_count")? > 0,
        id_last4: row.try_get("id_last4")?,
    })
}

/// What binding an external identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcBindOutcome {
    Bound,
    /// Already bound to another account (which is never named).
    Conflict,
}

/// One line of the activity log: a login step, a suspension, an unlock, a binding change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub account_id: Option<String>,
    /// As typed (for failures of unknown names) or the account's name.
    pub login_name: String,
    /// `login`, `lock`, `unlock`, `bind`, `unbind`, `logout`.
    pub event: String,
    /// `password`, `otp`, `captcha`, `certificate`, `oidc:<id>`, `cli`.
    pub method: String,
    /// `success`, `failure`, `locked`, `throttled`, ...
    pub outcome: String,
    pub client_ip: String,
    pub user_agent: String,
    pub detail: String,
    pub at: i64,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
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

/// A verified card certificate as stored in a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateBinding {
    pub issuer: String,
    pub serial_hex: String,
    pub spki_sha256_hex: String,
    /// The certificate's common name (the holder's name).
    pub subject_name: String,
    /// Last four digits of the national ID; empty when the certificate has none.
    pub id_last4: String,
}

/// What binding a certificate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateBindOutcome {
    Bound,
    /// Already bound to another account (which is never named).
    Conflict,
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
