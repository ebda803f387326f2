//! `GET /.menshen/logout` asks to confirm (no state change on GET); `POST /.menshen/logout`
//! ends the session on the server, not just in the browser. With single sign-on, logging out
//! on any site or on the portal ends the whole sign-in: the portal session and, with it, every
//! site session linked to it, on every instance.

use menshen_pages::{ErrorKind, LoginMessage, SignedInPage};
use pingora::proxy::Session;

use super::Request;
use crate::clock;
use crate::cookies;
use crate::respond::Reply;

/// Where the browser goes after the logout: the login page (the portal's, with single
/// sign-on), which says so.
fn logged_out(req: &Request<'_>) -> Reply {
    Reply::redirect(303, &req.portal_url("/.menshen/login?lo=1"))
        .with_cookie(cookies::clear(req.names.session, req.names))
}

/// The login page's message after `?lo=1`.
pub fn message(req: &Request<'_>) -> LoginMessage {
    if req.state.portal.is_some() {
        LoginMessage::LoggedOutEverywhere
    } else {
        LoginMessage::LoggedOut
    }
}

pub async fn get(req: &Request<'_>) -> Reply {
    let (_, s) = match super::session_of(
        req,
        Reply::redirect(302, &req.portal_url("/.menshen/login")),
    )
    .await
    {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let html = menshen_pages::render_signed_in(&SignedInPage {
        lang: req.lang,
        display_name: &s.display_name,
        login_name: &s.login_name,
        csrf: &s.csrf,
        systems: &[],
        confirm_logout: true,
        everywhere: req.state.portal.is_some(),
    });
    Reply::html(200, html)
}

pub async fn post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let Some(id) = req.cookies.session.value() else {
        return logged_out(req);
    };
    let data = match req.state.sessions.load(id, clock::now_secs()).await {
        Ok(Some(d)) => d,
        Ok(None) => return logged_out(req),
        Err(_) => return super::unavailable(req.lang),
    };
    if !super::csrf_matches(&form, &data) {
        return Reply::error(
            req.lang,
            ErrorKind::Forbidden,
            Some("the form has expired; please try again"),
        );
    }
    if req.state.sessions.destroy_sign_in(id, &data).await.is_err() {
        return super::unavailable(req.lang);
    }
    if req.state.portal.is_some() {
        super::session_activity(req, &data, "logout", "everywhere", &req.host).await;
    }
    tracing::info!(user = %data.login_name, "logout");
    logged_out(req)
}
