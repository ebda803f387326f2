//! `POST /.menshen/logout`: ends the session on the server, not just in the browser.

use menshen_pages::ErrorKind;
use pingora::proxy::Session;
use subtle::ConstantTimeEq;

use super::Request;
use crate::clock;
use crate::cookies;
use crate::respond::Reply;

pub async fn post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let done = Reply::redirect(303, "/.menshen/login?lo=1")
        .with_cookie(cookies::clear(req.names.session, req.names));
    let Some(id) = req.cookies.session.value() else {
        return done;
    };
    let data = match req.state.sessions.load(id, clock::now_secs()).await {
        Ok(Some(d)) => d,
        Ok(None) => return done,
        Err(_) => return super::unavailable(req.lang),
    };
    let sent = form.get("csrf").unwrap_or("");
    if !bool::from(sent.as_bytes().ct_eq(data.csrf.as_bytes())) {
        return Reply::error(
            req.lang,
            ErrorKind::Forbidden,
            Some("the form has expired; please try again"),
        );
    }
    if req.state.sessions.destroy(id).await.is_err() {
        return super::unavailable(req.lang);
    }
    tracing::info!(user = %data.login_name, "logout");
    done
}
