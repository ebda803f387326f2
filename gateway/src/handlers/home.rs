//! `GET /.menshen/`: who is signed in, with the logout button; on the single sign-on portal,
//! the list of systems to go to.

use menshen_pages::{SignedInPage, SystemLink};

use super::Request;
use crate::clock;
use crate::respond::Reply;
use crate::sso;

pub async fn get(req: &Request<'_>) -> Reply {
    let Some(id) = req.cookies.session.value() else {
        return Reply::redirect(302, "/.menshen/login");
    };
    match req.state.sessions.load(id, clock::now_secs()).await {
        Ok(Some(s)) if s.is_authenticated() => {
            let hrefs = system_hrefs(req);
            let systems: Vec<SystemLink> = hrefs
                .iter()
                .map(|(name, href)| SystemLink { name, href })
                .collect();
            let html = menshen_pages::render_signed_in(&SignedInPage {
                lang: req.lang,
                display_name: &s.display_name,
                login_name: &s.login_name,
                csrf: &s.csrf,
                systems: &systems,
                confirm_logout: false,
                everywhere: req.state.portal.is_some(),
            });
            Reply::html(200, html)
        }
        Ok(_) => Reply::redirect(302, "/.menshen/login"),
        Err(_) => super::unavailable(req.lang),
    }
}

/// On the portal: each site's name and the address of its first host.
fn system_hrefs(req: &Request<'_>) -> Vec<(String, String)> {
    if !req.site.portal {
        return Vec::new();
    }
    req.state
        .config
        .sites
        .iter()
        .filter_map(|site| {
            let host = site.hosts.first()?;
            let href = format!("{}/", sso::host_origin(host, req.tls, &req.host));
            Some((site.name.clone(), href))
        })
        .collect()
}
