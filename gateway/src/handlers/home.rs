//! `GET /.menshen/`: who is signed in, with the logout button.

use menshen_pages::SignedInPage;

use super::Request;
use crate::clock;
use crate::respond::Reply;

pub async fn get(req: &Request<'_>) -> Reply {
    let Some(id) = req.cookies.session.value() else {
        return Reply::redirect(302, "/.menshen/login");
    };
    match req.state.sessions.load(id, clock::now_secs()).await {
        Ok(Some(s)) if s.is_authenticated() => {
            let html = menshen_pages::render_signed_in(&SignedInPage {
                lang: req.lang,
                display_name: &s.display_name,
                login_name: &s.login_name,
                csrf: &s.csrf,
            });
            Reply::html(200, html)
        }
        Ok(_) => Reply::redirect(302, "/.menshen/login"),
        Err(_) => super::unavailable(req.lang),
    }
}
