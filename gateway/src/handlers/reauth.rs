//! Proof of presence before a sign-in method changes: OTP re-bind, binding a card, linking or
//! unlinking an external account. A recent login is not enough: a stolen or forgotten session
//! alone must not replace the owner's factors, so the change form also carries the current
//! password (or, for an account without a usable password, a fresh OTP code).
//!
//! This module is the one place that decides what to ask ([`required`]) and checks it
//! ([`check`]). The check is a real sign-in step for the lockout: it reserves an attempt
//! against the same counters as the login page, so wrong answers here suspend the account
//! exactly like wrong passwords (or codes) there, and every answer is in the activity log.
//! The forced first binding (stage `MustBind`, right after the password) asks nothing again.

use menshen_otp::totp::{self, Secret};
use menshen_pages::{CODE_FIELD, PASSWORD_FIELD, ReauthField};

use super::{Request, activity};
use crate::accounts::Account;
use crate::clock;
use crate::forms::Form;
use crate::passwords::HashError;
use crate::regulation::{Attempt, Counted, FailureOutcome, taipei_clock};
use crate::sessions::{SessionData, Stage};

/// The longest answer looked at (a password the login form would refuse anyway).
const MAX_ANSWER: usize = 1024;

/// How a proof ended. Expected outcomes are values; `Err(StoreDown)` means something broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Nothing to ask (forced first binding), or the answer was right.
    Proven,
    /// The field was empty or absent: not a guess, not counted.
    Missing,
    /// Wrong password or code: counted towards the suspension.
    Wrong,
    /// The account is suspended until this time (Taiwan clock, for the page).
    Locked { until: String },
    /// The account has nothing it can prove itself with here (the support desk resets it).
    Unavailable,
}

/// The store, database or hashing pool could not answer: the caller fails closed.
#[derive(Debug)]
pub struct StoreDown;

/// Whether an account's stored password can be checked here: an argon2 PHC string (accounts
/// created without one carry a placeholder no password matches).
fn password_usable(account: &Account) -> bool {
    account.password_hash.starts_with("$argon2")
}

/// What a change form asks for this session and account.
pub fn required(s: &SessionData, account: &Account) -> ReauthField {
    if s.stage == Stage::MustBind {
        ReauthField::None
    } else if password_usable(account) {
        ReauthField::Password
    } else if account.otp_bound {
        ReauthField::OtpCode
    } else {
        ReauthField::Unavailable
    }
}

/// Checks the proof the form carries for a change of `what` (e.g. `otp`, `certificate`,
/// `oidc:google`, written to the activity log's detail).
pub async fn check(
    req: &Request<'_>,
    s: &SessionData,
    account: &Account,
    form: &Form,
    what: &str,
) -> Result<Proof, StoreDown> {
    let (kind, field, method) = match required(s, account) {
        ReauthField::None => return Ok(Proof::Proven),
        ReauthField::Unavailable => {
            activity(
                req,
                Some(account),
                "",
                "reauth",
                "none",
                "unavailable",
                what,
            )
            .await;
            return Ok(Proof::Unavailable);
        }
        ReauthField::Password => (Counted::Password, PASSWORD_FIELD, "password"),
        ReauthField::OtpCode => (Counted::Otp, CODE_FIELD, "otp"),
    };
    let answer = form.get(field).unwrap_or("");
    if answer.is_empty() || answer.len() > MAX_ANSWER {
        return Ok(Proof::Missing);
    }
    let now = clock::now_secs();
    let name = account.login_name.as_str();
    let attempt = match req
        .state
        .regulation
        .reserve(kind, name, account.unlocked_at.max(0) as u64, now)
        .await
        .map_err(|_| StoreDown)?
    {
        Attempt::Allowed(n) => n,
        Attempt::Suspended { until } => {
            activity(req, Some(account), "", "reauth", method, "locked", what).await;
            return Ok(Proof::Locked {
                until: taipei_clock(until),
            });
        }
    };
    let right = match kind {
        Counted::Password => match req
            .state
            .passwords
            .verify(answer, Some(&account.password_hash))
            .await
        {
            Ok(v) => v,
            Err(HashError::Busy) | Err(HashError::Internal(_)) => return Err(StoreDown),
        },
        Counted::Otp => code_is_fresh(req, account, answer, now).await?,
    };
    if right {
        req.state
            .regulation
            .success(kind, name)
            .await
            .map_err(|_| StoreDown)?;
        if !activity(req, Some(account), "", "reauth", method, "success", what).await {
            return Err(StoreDown);
        }
        return Ok(Proof::Proven);
    }
    tracing::info!(user = %name, ip = ?req.client_ip, "re-authentication failed");
    activity(req, Some(account), "", "reauth", method, "failure", what).await;
    match req
        .state
        .regulation
        .failure(kind, name, attempt, now)
        .await
        .map_err(|_| StoreDown)?
    {
        FailureOutcome::Counted(_) => Ok(Proof::Wrong),
        FailureOutcome::Suspended { until } => {
            activity(req, Some(account), "", "lock", method, "locked", what).await;
            Ok(Proof::Locked {
                until: taipei_clock(until),
            })
        }
    }
}

/// A code of the account's bound OTP, accepted once only (as on the OTP page).
async fn code_is_fresh(
    req: &Request<'_>,
    account: &Account,
    code: &str,
    now: u64,
) -> Result<bool, StoreDown> {
    let store = req.state.accounts().await.map_err(|_| StoreDown)?;
    let Some((sealed, _)) = store
        .otp_binding(&account.id)
        .await
        .map_err(|_| StoreDown)?
    else {
        return Ok(false);
    };
    let Some(secret) = req
        .state
        .keyring
        .open(&sealed, account.id.as_bytes())
        .ok()
        .and_then(|b| Secret::from_bytes(&b))
    else {
        tracing::error!(user = %account.login_name, "the OTP secret cannot be opened with the configured keys");
        return Err(StoreDown);
    };
    match totp::matching_step(&secret, code, now) {
        Some(step) => store
            .consume_otp_step(&account.id, step as i64)
            .await
            .map_err(|_| StoreDown),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(hash: &str, otp: bool) -> Account {
        Account {
            id: "a1".into(),
            login_name: "wang01".into(),
            display_name: String::new(),
            school_code: String::new(),
            roles: vec![],
            email: String::new(),
            password_hash: hash.into(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
            unlocked_at: 0,
            otp_bound: otp,
            certificate_bound: !otp,
            mobile_bound: false,
            id_last4: String::new(),
        }
    }

    fn session(stage: Stage) -> SessionData {
        SessionData {
            login_name: "wang01".into(),
            factors: vec![],
            stage,
            auth_method: "certificate".into(),
            ..SessionData::sample("a1", 0)
        }
    }

    #[test]
    fn what_a_change_asks_for() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let full = session(Stage::Authenticated);
        assert_eq!(required(&full, &account(phc, true)), ReauthField::Password);
        assert_eq!(required(&full, &account("", true)), ReauthField::OtpCode);
        assert_eq!(
            required(&full, &account("!", false)),
            ReauthField::Unavailable
        );
        // The forced first binding follows the password just given.
        let forced = session(Stage::MustBind);
        assert_eq!(required(&forced, &account(phc, false)), ReauthField::None);
    }
}
