//! Mail that tells a person what happened to their account (issue: 告知本人): a suspension
//! after wrong passwords or codes (when, from which address, until when, whom to call) and a
//! second factor bound or replaced. Each notice is on the account's activity log; a
//! per-account cap stops a flood of failures from becoming a flood of mail.

use std::time::Duration;

use menshen_pages::{MailContext, NoticeMail};
use sha2::{Digest, Sha256};

use super::{Request, activity};
use crate::accounts::Account;
use crate::clock;

/// Notices one account may be sent per hour.
const PER_ACCOUNT_PER_HOUR: u64 = 5;

/// Mails `notice` to the account's address when `[mail]` is set and the account has one.
/// Never fails the request: a notice that cannot go out is logged and counted.
pub async fn send(req: &Request<'_>, account: &Account, notice: NoticeMail<'_>) {
    let Some(mailer) = &req.state.mailer else {
        return;
    };
    if account.email.trim().is_empty() {
        return;
    }
    let key = format!(
        "notice:{}",
        hex::encode(Sha256::digest(account.id.as_bytes()))
    );
    match req
        .state
        .volatile
        .hit(&key, Duration::from_secs(3600))
        .await
    {
        Ok(n) if n <= PER_ACCOUNT_PER_HOUR => {}
        Ok(_) => {
            activity(
                req,
                Some(account),
                "",
                "notice",
                "mail",
                "limited",
                notice.kind(),
            )
            .await;
            return;
        }
        Err(_) => {
            tracing::warn!(user = %account.login_name, "notice not sent: the store is unavailable");
            return;
        }
    }
    let when = super::account::taipei_datetime(clock::now_secs() as i64);
    let ip = req.client_ip_text();
    let cx = MailContext {
        lang: req.lang,
        display_name: &account.display_name,
        login_name: &account.login_name,
        when: &when,
        client_ip: &ip,
    };
    let text = menshen_pages::notice_mail(&cx, &notice, req.state.config.login.support.as_deref());
    mailer.send(notice.kind(), &account.email, text);
    activity(
        req,
        Some(account),
        "",
        "notice",
        "mail",
        "sent",
        notice.kind(),
    )
    .await;
}
