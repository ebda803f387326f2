//! Single sign-on hand-off ([`crate::sso`]): the portal issues a one-time code for a site
//! (`GET /.menshen/login?rd=<site URL>` with a complete session), and the site redeems it
//! (`GET /.menshen/handoff?code=…`) for a session of its own, linked to the portal session.

use menshen_pages::ErrorKind;
use menshen_policies::redirect::{ReturnTarget, safe_return_url};

use super::Request;
use crate::metrics::HANDOFFS;
use crate::respond::Reply;
use crate::sessions::{SessionData, key_of};
use crate::sso::{self, Grant, Redeemed};
use crate::{clock, cookies, random};

/// On the portal: when the browser's session is complete, a redirect that hands it to the
/// site `target` names (an absolute URL already validated by the portal's rules); `None` when
/// it must sign in first.
pub async fn issue_if_signed_in(req: &Request<'_>, target: &str) -> Option<Reply> {
    let id = req.cookies.session.value()?;
    let now = clock::now_secs();
    match req.state.sessions.load(id, now).await {
        Ok(Some(s))
            if s.is_authenticated() && req.state.watch.allows(&s.account_id, s.created_at) => {}
        Ok(_) => return None,
        Err(_) => return Some(super::unavailable(req.lang)),
    }
    // Already checked against the configuration; parsed again only to split it.
    let Some(ReturnTarget::Absolute { origin, path }) = safe_return_url(target, |_| true) else {
        return None;
    };
    let grant = Grant {
        host: origin.authority(),
        path,
        portal_key: hex::encode(key_of(id)),
        issued_at: now,
    };
    let code = match sso::issue(req.state.volatile.as_ref(), &grant).await {
        Ok(code) => code,
        Err(e) => {
            tracing::warn!("hand-off: {e}");
            return Some(super::unavailable(req.lang));
        }
    };
    HANDOFFS.with_label_values(&["issued"]).inc();
    Some(Reply::redirect(
        302,
        &format!("{}/.menshen/handoff?code={code}", origin.to_url_prefix()),
    ))
}

/// On a site: exchanges the code for a site session and goes on to the page first asked for.
pub async fn redeem(req: &Request<'_>) -> Reply {
    let now = clock::now_secs();
    let code = req.query.get("code").unwrap_or("");
    let host = sso::canonical_host(&req.host, req.tls);
    let redeemed = match sso::redeem(req.state.volatile.as_ref(), code, &host, now).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("hand-off: {e}");
            return super::unavailable(req.lang);
        }
    };
    let grant = match redeemed {
        Redeemed::Valid(grant) => grant,
        other => {
            HANDOFFS.with_label_values(&[other.label()]).inc();
            if let Redeemed::Expired(g) | Redeemed::WrongHost(g) = &other {
                refused_activity(req, g, other.label(), now).await;
            }
            return invalid(req);
        }
    };
    let portal = match req.state.sessions.load_by_key(&grant.portal_key, now).await {
        Ok(Some(p))
            if p.is_authenticated() && req.state.watch.allows(&p.account_id, p.created_at) =>
        {
            p
        }
        Ok(_) => {
            HANDOFFS.with_label_values(&["session_ended"]).inc();
            return invalid(req);
        }
        Err(_) => return super::unavailable(req.lang),
    };
    // The site's own session: the same person and method, ending when the portal's does
    // (same absolute deadline, and linked so a logout anywhere ends it).
    let data = SessionData {
        csrf: random::token(),
        last_seen: now,
        return_to: None,
        portal: Some(grant.portal_key.clone()),
        site: Some(host.clone()),
        client_ip: req.client_ip_text(),
        device: req.device(),
        ..portal.clone()
    };
    let id = match req.state.sessions.create(&data, now).await {
        Ok(id) => id,
        Err(_) => return super::unavailable(req.lang),
    };
    if let Some(old) = req.cookies.session.value() {
        let _ = req.state.sessions.destroy(old).await;
    }
    if !super::session_activity(req, &data, "handoff", "success", &host).await {
        let _ = req.state.sessions.destroy(&id).await;
        return super::unavailable(req.lang);
    }
    HANDOFFS.with_label_values(&["redeemed"]).inc();
    tracing::info!(user = %data.login_name, host = %host, "single sign-on hand-off");
    Reply::redirect(302, &grant.path).with_cookie(cookies::set(
        req.names.session,
        &id,
        req.names,
        None,
    ))
}

/// A refused code whose account is known goes into that account's activity log.
async fn refused_activity(req: &Request<'_>, grant: &Grant, outcome: &str, now: u64) {
    if let Ok(Some(portal)) = req.state.sessions.load_by_key(&grant.portal_key, now).await {
        let detail = format!(
            "{} (for {})",
            sso::canonical_host(&req.host, req.tls),
            grant.host
        );
        super::session_activity(req, &portal, "handoff", outcome, &detail).await;
    }
}

fn invalid(req: &Request<'_>) -> Reply {
    Reply::error(req.lang, ErrorKind::SignInLinkInvalid, None)
}
