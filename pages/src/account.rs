//! The account pages (`GET /.menshen/account`): three tabs as in the school system's manual —
//! 個人資料管理 (profile), 帳號活動紀錄 (account activity) and 登入設定 (sign-in settings, where
//! OTP, the citizen certificate and OpenID Connect accounts are bound, re-bound and unbound).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::bind::{CertificateRow, CertificateView};
use crate::lang::Lang;
use crate::reauth::{ReauthField, ReauthView};
use crate::texts::Texts;
use crate::{MessageView, render_or_fallback};

/// Characters left as they are in a path segment: RFC 3986 unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Everything the account page shows.
#[derive(Debug, Clone)]
pub struct AccountPage<'a> {
    pub lang: Lang,
    /// Which tab is shown.
    pub tab: AccountTab,
    /// Value of the hidden `csrf` field of every POST form on the page.
    pub csrf: &'a str,
    pub login_name: &'a str,
    pub display_name: &'a str,
    pub school_code: &'a str,
    /// Role codes; `aa` and `staff` are shown in words, others as they are.
    pub roles: &'a [String],
    pub email: &'a str,
    /// How this session signed in, e.g. `password+otp`.
    pub auth_method: &'a str,
    /// The account's activity, newest first.
    pub activity: &'a [ActivityRow<'a>],
    pub otp_bound: bool,
    pub certificate: CertificateRow<'a>,
    /// The bound card, shown in the certificate row when one is bound.
    pub certificate_holder: Option<CertificateHolder<'a>>,
    /// The mobile citizen certificate row (`None`: not configured) and its bound holder.
    pub mobile: Option<CertificateRow<'a>>,
    pub mobile_holder: Option<CertificateHolder<'a>>,
    /// One row per configured OpenID Connect provider.
    pub providers: &'a [ProviderRow<'a>],
    pub message: Option<AccountMessage>,
    /// The person's active sign-ins (devices), this one first.
    pub sign_ins: &'a [SignInRow<'a>],
    /// The proof the provider link and unlink forms ask for.
    pub reauth: ReauthField,
}

/// One active sign-in in the list of devices (帳號活動紀錄).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInRow<'a> {
    /// Names the sign-in in the `登出此裝置` form's action (not a secret: it cannot be used as a
    /// cookie).
    pub handle: &'a str,
    /// Already formatted, e.g. "2026-11-24 14:05".
    pub started: &'a str,
    pub last_used: &'a str,
    pub client_ip: &'a str,
    /// The browser, summarised when the sign-in began ([`browser_summary`]).
    pub device: &'a str,
    /// The systems reached with it, joined for display (single sign-on); may be empty.
    pub systems: &'a str,
    /// The sign-in this page is shown in.
    pub current: bool,
}

/// What the account page shows of a bound citizen certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateHolder<'a> {
    /// The holder's name on the card.
    pub name: &'a str,
    /// Last four digits of the national ID (empty when the card does not carry them).
    pub id_last4: &'a str,
    /// When it was bound, formatted for display.
    pub bound_at: &'a str,
}

/// The tabs of the account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountTab {
    /// 個人資料管理.
    Profile,
    /// 帳號活動紀錄.
    Activity,
    /// 登入設定.
    Settings,
}

impl AccountTab {
    /// Every tab, in display order.
    pub const ALL: [AccountTab; 3] = [
        AccountTab::Profile,
        AccountTab::Activity,
        AccountTab::Settings,
    ];

    /// The tab named by the `?tab=` value (`profile`, `activity`, `settings`,
    /// case-insensitive); [`AccountTab::Profile`] when missing or unknown.
    pub fn from_query(q: Option<&str>) -> AccountTab {
        let q = q.map(str::trim).unwrap_or("");
        AccountTab::ALL
            .into_iter()
            .find(|tab| tab.code().eq_ignore_ascii_case(q))
            .unwrap_or(AccountTab::Profile)
    }

    /// The `?tab=` value: `profile`, `activity` or `settings`.
    pub fn code(self) -> &'static str {
        match self {
            AccountTab::Profile => "profile",
            AccountTab::Activity => "activity",
            AccountTab::Settings => "settings",
        }
    }

    fn label(self, t: &'static Texts) -> &'static str {
        match self {
            AccountTab::Profile => t.tab_profile,
            AccountTab::Activity => t.tab_activity,
            AccountTab::Settings => t.tab_settings,
        }
    }
}

/// One line of the account activity (帳號活動紀錄).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityRow<'a> {
    /// Already formatted, e.g. "2026-11-24 14:05".
    pub when: &'a str,
    /// `login`, `lock`, `unlock`, `bind`, `unbind`; other words are shown as they are.
    pub event: &'a str,
    /// `password`, `otp`, `captcha`, `certificate`, `oidc:<id>`, `cli`; may be joined with `+`.
    pub method: &'a str,
    /// `success`, `failure`, `locked`, `throttled`, `use_certificate`, …
    pub outcome: &'a str,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
}

/// One OpenID Connect provider row of the sign-in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderRow<'a> {
    /// The provider id used in URLs, e.g. "google".
    pub id: &'a str,
    /// e.g. "Google 帳號".
    pub label: &'a str,
    /// The bound external account as shown (an email); `None` when not bound.
    pub bound_as: Option<&'a str>,
    /// `false` when neither OTP nor a certificate is bound: binding is not offered and the reason
    /// is shown instead.
    pub may_bind: bool,
}

/// The message shown at the top of the account page after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountMessage {
    /// The provider account was bound.
    OidcBound { label: String },
    /// The provider account was unbound.
    OidcUnbound { label: String },
    /// The provider account is already bound to another account (never named).
    OidcConflict { label: String },
    /// Binding a provider needs OTP or a certificate first.
    OidcNeedsSecondFactor,
    /// OTP was bound again.
    OtpRebound,
    /// A device was signed out from the list of sign-ins.
    DeviceSignedOut,
    /// Something went wrong; try again.
    Failed,
    /// The password was changed (修改密碼).
    PasswordChanged,
    /// A binding change was refused: the current password (or code) was not given.
    ReauthMissing,
    /// A binding change was refused: the current password (or code) was wrong.
    ReauthWrong,
    /// A binding change was refused: the account is suspended until then.
    ReauthLocked { until: String },
    /// A binding change was refused: nothing to prove the person with here.
    ReauthUnavailable,
}

impl AccountMessage {
    fn view(&self, t: &'static Texts, providers: &[ProviderRow]) -> MessageView {
        match self {
            AccountMessage::OidcBound { label } => {
                MessageView::success(&t.msg_oidc_bound.replace("{label}", label))
            }
            AccountMessage::OidcUnbound { label } => {
                MessageView::success(&t.msg_oidc_unbound.replace("{label}", label))
            }
            AccountMessage::OidcConflict { label } => {
                MessageView::error(&t.msg_oidc_conflict.replace("{label}", label))
            }
            AccountMessage::OidcNeedsSecondFactor => {
                let labels = join_labels(providers, t);
                MessageView::error(&t.msg_oidc_needs_second_factor.replace("{label}", &labels))
            }
            AccountMessage::OtpRebound => MessageView::success(t.msg_otp_rebound),
            AccountMessage::DeviceSignedOut => MessageView::success(t.msg_device_signed_out),
            AccountMessage::Failed => MessageView::error(t.msg_account_failed),
            AccountMessage::PasswordChanged => MessageView::success(t.msg_password_changed),
            AccountMessage::ReauthMissing => MessageView::error(t.msg_reauth_missing),
            AccountMessage::ReauthWrong => MessageView::error(t.msg_reauth_wrong),
            AccountMessage::ReauthLocked { until } => {
                MessageView::error(&t.msg_reauth_locked.replace("{until}", until))
            }
            AccountMessage::ReauthUnavailable => MessageView::error(t.msg_reauth_unavailable),
        }
    }
}

/// The providers' labels joined with the language's list separator.
fn join_labels(providers: &[ProviderRow], t: &'static Texts) -> String {
    providers
        .iter()
        .map(|p| p.label)
        .collect::<Vec<_>>()
        .join(t.list_separator)
}

/// A tab link.
struct TabView {
    id: String,
    href: String,
    label: &'static str,
    current: bool,
}

/// One activity row, in words.
struct ActivityView<'a> {
    when: &'a str,
    event: String,
    /// `outcome-success`, `outcome-failure` or `outcome-other`.
    outcome_class: &'static str,
    method: String,
    client_ip: &'a str,
    agent_short: String,
    agent_full: &'a str,
}

/// One active sign-in, with its form's action.
struct SignInView<'a> {
    row: &'a SignInRow<'a>,
    end_action: String,
}

/// One provider row, with its links.
struct ProviderView<'a> {
    id: &'a str,
    label: &'a str,
    bound_as: Option<&'a str>,
    may_bind: bool,
    /// The binding start is a POST (with the CSRF token and the proof), never a link.
    start_action: String,
    unbind_action: String,
    bind_reauth_id: String,
    unbind_reauth_id: String,
}

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'static str,
    page: &'a AccountPage<'a>,
    tabs: Vec<TabView>,
    tab_label: &'static str,
    message: Option<MessageView>,
    roles: String,
    auth_method: String,
    activity: Vec<ActivityView<'a>>,
    sign_ins: Vec<SignInView<'a>>,
    cert: CertificateView<'a>,
    /// The bound card in words, e.g. 持卡人 王小明（身分證末四碼 6789），2026-12-01 09:30 綁定.
    cert_holder: Option<String>,
    m: &'static crate::mobile::MobileTexts,
    mobile: Option<CertificateView<'a>>,
    mobile_holder: Option<String>,
    providers: Vec<ProviderView<'a>>,
    note_one_account: String,
    reauth: Option<ReauthView>,
}

/// Renders the account page.
pub fn render_account(page: &AccountPage) -> String {
    let t = page.lang.texts();
    let tabs = AccountTab::ALL
        .into_iter()
        .map(|tab| TabView {
            id: format!("tab-{}", tab.code()),
            href: format!("/.menshen/account?tab={}", tab.code()),
            label: tab.label(t),
            current: tab == page.tab,
        })
        .collect();
    let roles = page
        .roles
        .iter()
        .map(|role| role_label(role, t))
        .filter(|role| !role.trim().is_empty())
        .collect::<Vec<_>>()
        .join(t.list_separator);
    let activity = page
        .activity
        .iter()
        .map(|row| ActivityView {
            when: row.when,
            // The password step of a two-step sign-in is not yet a sign-in (the manual's
            // 密碼驗證成功); the completed sign-in is the second factor's 登入成功.
            event: if (row.event, row.method, row.outcome) == ("login", "password", "success") {
                t.event_password_verified.to_owned()
            } else {
                event_label(row.event, row.outcome, t)
            },
            outcome_class: outcome_class(row.event, row.outcome),
            method: method_label(row.method, t),
            client_ip: row.client_ip,
            agent_short: browser_summary(row.user_agent),
            agent_full: row.user_agent,
        })
        .collect();
    let providers = page
        .providers
        .iter()
        .map(|p| {
            let segment = utf8_percent_encode(p.id, PATH_SEGMENT);
            ProviderView {
                id: p.id,
                label: p.label,
                bound_as: p.bound_as,
                may_bind: p.may_bind,
                start_action: format!("/.menshen/oidc/{segment}/start"),
                unbind_action: format!("/.menshen/account/oidc/{segment}/unbind"),
                bind_reauth_id: format!("current-proof-bind-{}", p.id),
                unbind_reauth_id: format!("current-proof-unbind-{}", p.id),
            }
        })
        .collect();
    render_or_fallback(&AccountTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: t.tagline,
        page,
        tabs,
        tab_label: page.tab.label(t),
        message: page.message.as_ref().map(|m| m.view(t, page.providers)),
        roles,
        auth_method: method_label(page.auth_method, t),
        activity,
        sign_ins: page
            .sign_ins
            .iter()
            .map(|row| SignInView {
                row,
                end_action: format!(
                    "/.menshen/account/sessions/{}/end",
                    utf8_percent_encode(row.handle, PATH_SEGMENT)
                ),
            })
            .collect(),
        cert: CertificateView::new(page.certificate),
        cert_holder: page.certificate_holder.map(|h| {
            let text = if h.id_last4.is_empty() {
                t.settings_certificate_holder_no_id
            } else {
                t.settings_certificate_holder
            };
            text.replace("{name}", h.name)
                .replace("{last4}", h.id_last4)
                .replace("{date}", h.bound_at)
        }),
        m: page.lang.mobile_texts(),
        mobile: page.mobile.map(CertificateView::new),
        mobile_holder: page.mobile_holder.map(|h| {
            page.lang
                .mobile_texts()
                .row_holder
                .replace("{name}", h.name)
                .replace("{last4}", h.id_last4)
                .replace("{date}", h.bound_at)
        }),
        providers,
        note_one_account: t
            .settings_note_one_account
            .replace("{labels}", &join_labels(page.providers, t)),
        reauth: page.reauth.view(t),
    })
}

/// A role code in words: `aa` and `staff` translated, others as they are.
fn role_label(role: &str, t: &'static Texts) -> String {
    match role.trim() {
        r if r.eq_ignore_ascii_case("aa") => t.role_aa.to_owned(),
        r if r.eq_ignore_ascii_case("staff") => t.role_staff.to_owned(),
        r => r.to_owned(),
    }
}

/// A sign-in method in words; `+`-joined methods are translated one by one.
fn method_label(method: &str, t: &'static Texts) -> String {
    if method.trim().is_empty() {
        return String::new();
    }
    method
        .split('+')
        .map(|m| {
            let m = m.trim();
            match m {
                "password" => t.method_password,
                "otp" => t.method_otp,
                "certificate" => t.method_certificate,
                "captcha" => t.method_captcha,
                "cli" => t.method_cli,
                "mail" => t.method_mail,
                _ => m.strip_prefix("oidc:").unwrap_or(m),
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// What happened, in words: `login`+`success` → 登入成功, `login`+`failure` → 登入失敗,
/// `lock` → 帳號暫時停用…; other outcomes are added in brackets.
fn event_label(event: &str, outcome: &str, t: &'static Texts) -> String {
    let event = event.trim();
    let outcome = outcome.trim();
    let outcome_word = match outcome {
        "" | "success" => None,
        "failure" => Some(t.outcome_failure),
        "locked" => Some(t.outcome_locked),
        "throttled" => Some(t.outcome_throttled),
        "use_certificate" => Some(t.outcome_use_certificate),
        "everywhere" => Some(t.outcome_everywhere),
        "device" => Some(t.outcome_device),
        "all_devices" => Some(t.outcome_all_devices),
        "sent" => Some(t.outcome_sent),
        "no_address" => Some(t.outcome_no_address),
        "limited" => Some(t.outcome_limited),
        other => Some(other),
    };
    let with_outcome = |base: &str, outcome: &str| {
        t.activity_with_outcome
            .replace("{event}", base)
            .replace("{outcome}", outcome)
    };
    match (event, outcome) {
        ("login", "success") => t.event_login_success.to_owned(),
        ("login", "failure") => t.event_login_failure.to_owned(),
        ("login", "locked" | "throttled" | "use_certificate") => {
            with_outcome(t.event_login_failure, outcome_word.unwrap_or(""))
        }
        _ => {
            let base = match event {
                "login" => t.event_login,
                "lock" => t.event_lock,
                "unlock" => t.event_unlock,
                "bind" => t.event_bind,
                "unbind" => t.event_unbind,
                "handoff" => t.event_handoff,
                "logout" => t.event_logout,
                "password_reset" => t.event_password_reset,
                "password_change" => t.event_password_change,
                "password_reset_request" => t.event_password_reset_request,
                "reauth" => t.event_reauth,
                "notice" => t.event_notice,
                other => other,
            };
            match outcome_word {
                // A lock is itself the outcome of failures; "locked" adds nothing.
                Some(_) if event == "lock" && outcome == "locked" => base.to_owned(),
                Some(word) => with_outcome(base, word),
                None => base.to_owned(),
            }
        }
    }
}

/// The CSS class colouring the activity text.
fn outcome_class(event: &str, outcome: &str) -> &'static str {
    match (event.trim(), outcome.trim()) {
        ("lock", _) => "outcome-failure",
        (_, "success") => "outcome-success",
        (_, "failure" | "locked" | "throttled" | "use_certificate") => "outcome-failure",
        _ => "outcome-other",
    }
}

/// A short description of a `User-Agent` ("Chrome 140 · Windows"); unknown agents are cut to
/// 48 characters. The full value is kept in the cell's `title`.
pub fn browser_summary(user_agent: &str) -> String {
    let ua = user_agent.trim();
    let version = |marker: &str| -> Option<String> {
        let start = ua.find(marker)? + marker.len();
        let major: String = ua[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(major)
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
    ]
    .into_iter()
    .find_map(|(marker, name)| version(marker).map(|v| (name, v)))
    .or_else(|| {
        (ua.contains("Safari/") && ua.contains("Version/"))
            .then(|| ("Safari", version("Version/").unwrap_or_default()))
    });
    let os = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    match (browser, os) {
        (Some((name, v)), os) => {
            let mut s = name.to_owned();
            if !v.is_empty() {
                s.push(' ');
                s.push_str(&v);
            }
            if let Some(os) = os {
                s.push_str(" · ");
                s.push_str(os);
            }
            s
        }
        (None, _) if ua.chars().count() > 48 => {
            let mut s: String = ua.chars().take(47).collect();
            s.push('…');
            s
        }
        (None, _) => ua.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [&str; 2] = ["staff", "teacher"];

    fn roles() -> Vec<String> {
        ROLES.iter().map(|r| (*r).to_owned()).collect()
    }

    const ACTIVITY: [ActivityRow<'static>; 3] = [
        ActivityRow {
            when: "2026-11-24 14:05",
            event: "login",
            method: "password+otp",
            outcome: "success",
            client_ip: "203.0.113.7",
            user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36",
        },
        ActivityRow {
            when: "2026-11-24 14:03",
            event: "login",
            method: "password",
            outcome: "failure",
            client_ip: "203.0.113.7",
            user_agent: "",
        },
        ActivityRow {
            when: "2026-11-20 09:00",
            event: "bind",
            method: "oidc:google",
            outcome: "success",
            client_ip: "2001:db8::1",
            user_agent: "curl/8.0",
        },
    ];

    const PROVIDERS: [ProviderRow<'static>; 2] = [
        ProviderRow {
            id: "google",
            label: "Google 帳號",
            bound_as: Some("wang01@gmail.com"),
            may_bind: true,
        },
        ProviderRow {
            id: "edu",
            label: "教育雲端帳號",
            bound_as: None,
            may_bind: true,
        },
    ];

    fn page<'a>(lang: Lang, tab: AccountTab, roles: &'a [String]) -> AccountPage<'a> {
        AccountPage {
            lang,
            tab,
            csrf: "csrf-acc-9",
            login_name: "wang01",
            display_name: "王小明",
            school_code: "133601",
            roles,
            email: "wang01@school.edu.tw",
            auth_method: "password+otp",
            activity: &ACTIVITY,
            otp_bound: true,
            certificate: CertificateRow::NotYetAvailable,
            certificate_holder: None,
            mobile: None,
            mobile_holder: None,
            providers: &PROVIDERS,
            message: None,
            sign_ins: &[],
            reauth: ReauthField::Password,
        }
    }

    #[test]
    fn the_activity_tab_lists_the_active_sign_ins() {
        let roles = vec!["staff".to_string()];
        let rows = [
            SignInRow {
                handle: "aaaa1111bbbb2222",
                started: "2026-12-02 08:00",
                last_used: "2026-12-02 09:10",
                client_ip: "203.0.113.7",
                device: "Chrome 140 · Windows",
                systems: "registry.school.example, hr.school.example",
                current: true,
            },
            SignInRow {
                handle: "cccc3333dddd4444",
                started: "2026-12-01 13:00",
                last_used: "2026-12-01 13:05",
                client_ip: "198.51.100.2",
                device: "",
                systems: "",
                current: false,
            },
        ];
        let html = render_account(&AccountPage {
            sign_ins: &rows,
            reauth: ReauthField::Password,
            ..page(Lang::ZhTw, AccountTab::Activity, &roles)
        });
        let table = part(&html, "<table id=\"sign-ins-table\"", "</table>");
        assert!(table.contains("Chrome 140 · Windows"));
        assert!(table.contains("registry.school.example, hr.school.example"));
        assert!(table.contains("目前使用的裝置"));
        assert_eq!(
            table.matches("登出此裝置</button>").count(),
            1,
            "not for this device"
        );
        assert!(table.contains("action=\"/.menshen/account/sessions/cccc3333dddd4444/end\""));
        assert!(table.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-acc-9\">"));
        assert!(html.contains("action=\"/.menshen/account/sessions/end-all\""));
        assert!(html.contains(">登出所有裝置</button>"));
        let en = render_account(&AccountPage {
            sign_ins: &rows,
            reauth: ReauthField::Password,
            ..page(Lang::En, AccountTab::Activity, &roles)
        });
        assert!(en.contains("Where you are signed in"));
        assert!(en.contains(">Sign out all devices</button>"));
        // Other tabs do not show it.
        let profile = render_account(&AccountPage {
            sign_ins: &rows,
            reauth: ReauthField::Password,
            ..page(Lang::ZhTw, AccountTab::Profile, &roles)
        });
        assert!(!profile.contains("sign-ins-table"));
    }

    /// The element that starts with `start` up to (not including) `end`.
    fn part<'h>(html: &'h str, start: &str, end: &str) -> &'h str {
        let from = html
            .find(start)
            .unwrap_or_else(|| panic!("{start} present"));
        let to = from + html[from..].find(end).expect("end present");
        &html[from..to]
    }

    fn row<'h>(html: &'h str, id: &str) -> &'h str {
        part(html, &format!("<tr id=\"{id}\">"), "</tr>")
    }

    fn assert_no_inline_code(html: &str) {
        assert!(!html.contains("<script"));
        assert!(!html.contains("<style"));
        assert!(!html.contains("style="));
        for handler in [" onclick=", " onload=", " onerror=", " onsubmit="] {
            assert!(!html.contains(handler), "no inline event handlers");
        }
    }

    /// Every `<form method="post">` carries the hidden csrf field.
    fn assert_forms_carry_csrf(html: &str, csrf: &str) {
        let mut forms = 0;
        for (i, _) in html.match_indices("<form ") {
            let form = &html[i..i + html[i..].find("</form>").expect("form end")];
            assert!(form.contains("method=\"post\""), "{form}");
            assert!(
                form.contains(&format!(
                    "<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
                )),
                "{form}"
            );
            forms += 1;
        }
        assert!(forms >= 1);
    }

    #[test]
    fn tab_codes() {
        for tab in AccountTab::ALL {
            assert_eq!(AccountTab::from_query(Some(tab.code())), tab);
        }
        assert_eq!(AccountTab::from_query(None), AccountTab::Profile);
        assert_eq!(AccountTab::from_query(Some("")), AccountTab::Profile);
        assert_eq!(AccountTab::from_query(Some("nope")), AccountTab::Profile);
        assert_eq!(
            AccountTab::from_query(Some("Settings")),
            AccountTab::Settings
        );
        assert_eq!(
            AccountTab::from_query(Some(" activity ")),
            AccountTab::Activity
        );
        assert_eq!(AccountTab::Profile.code(), "profile");
        assert_eq!(AccountTab::Activity.code(), "activity");
        assert_eq!(AccountTab::Settings.code(), "settings");
    }

    #[test]
    fn header_and_tabs_on_every_tab() {
        let roles = roles();
        for lang in [Lang::ZhTw, Lang::En] {
            for tab in AccountTab::ALL {
                let html = render_account(&page(lang, tab, &roles));
                assert!(html.starts_with("<!DOCTYPE html>"));
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.html_lang())));
                assert!(html.contains("<h1 id=\"account-title\">"));
                for other in AccountTab::ALL {
                    let id = format!("tab-{}", other.code());
                    let link = part(&html, &format!("<a id=\"{id}\""), "</a>");
                    assert!(
                        link.contains(&format!("href=\"/.menshen/account?tab={}\"", other.code()))
                    );
                    assert_eq!(link.contains("aria-current=\"page\""), other == tab);
                }
                assert_eq!(html.matches("aria-current=").count(), 1);
                assert!(html.contains(&format!("id=\"panel-{}\"", tab.code())));
                for other in AccountTab::ALL {
                    if other != tab {
                        assert!(!html.contains(&format!("id=\"panel-{}\"", other.code())));
                    }
                }
                // Logout and the way back to the protected system, on every tab.
                let logout = part(&html, "<form id=\"logout-form\"", "</form>");
                assert!(logout.contains("method=\"post\" action=\"/.menshen/logout\""));
                assert!(logout.contains("id=\"logout-submit\""));
                let go = part(&html, "<a id=\"go-to-system\"", "</a>");
                assert!(go.contains("href=\"/\""));
                assert!(
                    html.contains("<span id=\"display-name\" class=\"account-name\">王小明</span>")
                );
                assert_forms_carry_csrf(&html, "csrf-acc-9");
                assert!(!html.contains("id=\"message\""));
                assert_no_inline_code(&html);
            }
        }
    }

    #[test]
    fn zh_tw_tabs_and_profile() {
        let roles = vec!["aa".to_owned(), "staff".to_owned(), "registrar".to_owned()];
        let html = render_account(&page(Lang::ZhTw, AccountTab::Profile, &roles));
        assert!(html.contains("<h1 id=\"account-title\">個人資料管理</h1>"));
        assert!(html.contains(">帳號活動紀錄</a>"));
        assert!(html.contains(">登入設定</a>"));
        assert!(html.contains(">登出</button>"));
        assert!(html.contains(">前往系統</a>"));
        assert!(html.contains("<dd id=\"profile-login-name\">wang01</dd>"));
        assert!(html.contains("<dd id=\"profile-display-name\">王小明</dd>"));
        assert!(html.contains("<dd id=\"profile-school-code\">133601</dd>"));
        assert!(
            html.contains("<dd id=\"profile-roles\">學校管理者 (AA)、業務帳號、registrar</dd>")
        );
        assert!(html.contains("<dd id=\"profile-email\">wang01@school.edu.tw</dd>"));
        assert!(html.contains("<dd id=\"profile-auth-method\">帳號密碼 + OTP 驗證</dd>"));
        assert!(html.contains("<dt>本次登入方式</dt>"));
        assert!(html.contains("id=\"profile-note\""));
        assert!(html.contains("學校管理者(AA帳號)或客服"));
        assert!(!html.contains("activity-table"));
        assert!(!html.contains("settings-table"));
    }

    #[test]
    fn english_profile() {
        let roles = vec!["aa".to_owned()];
        let html = render_account(&AccountPage {
            email: "",
            auth_method: "oidc:google+otp",
            ..page(Lang::En, AccountTab::Profile, &roles)
        });
        assert!(html.contains("<h1 id=\"account-title\">Your account</h1>"));
        assert!(html.contains(">Profile</a>"));
        assert!(html.contains(">Account activity</a>"));
        assert!(html.contains(">Sign-in settings</a>"));
        assert!(html.contains(">Sign out</button>"));
        assert!(html.contains("<dd id=\"profile-roles\">School administrator (AA)</dd>"));
        assert!(html.contains(
            "<dd id=\"profile-email\"><span class=\"value-missing\">(not provided)</span></dd>"
        ));
        assert!(html.contains("<dd id=\"profile-auth-method\">google + OTP</dd>"));
        assert!(html.contains("school administrator (AA account) or the support desk"));
        assert!(!html.contains("個人資料管理"));
        assert!(!html.contains("登出"));
    }

    #[test]
    fn the_password_step_and_the_completed_sign_in_read_differently() {
        let roles = roles();
        let rows = [
            ActivityRow {
                event: "login",
                method: "otp",
                ..ACTIVITY[0]
            },
            ActivityRow {
                event: "login",
                method: "password",
                outcome: "success",
                ..ACTIVITY[1]
            },
        ];
        let html = render_account(&AccountPage {
            activity: &rows,
            ..page(Lang::ZhTw, AccountTab::Activity, &roles)
        });
        let table = part(&html, "<table id=\"activity-table\"", "</table>");
        let rows: Vec<&str> = table.split("<tr class=\"activity-row\">").skip(1).collect();
        assert!(rows[0].contains(">登入成功<"), "{}", rows[0]);
        assert!(rows[1].contains(">密碼驗證成功<"), "{}", rows[1]);
    }

    #[test]
    fn activity_tab() {
        let roles = roles();
        let html = render_account(&page(Lang::ZhTw, AccountTab::Activity, &roles));
        let table = part(&html, "<table id=\"activity-table\"", "</table>");
        assert_eq!(table.matches("<tr class=\"activity-row\">").count(), 3);
        assert!(table.contains("<th scope=\"col\">時間</th>"));
        assert!(table.contains("<th scope=\"col\">IP 位址</th>"));
        let rows: Vec<&str> = table.split("<tr class=\"activity-row\">").skip(1).collect();
        assert!(rows[0].contains("2026-11-24 14:05"));
        assert!(rows[0].contains("<span class=\"outcome-success\">登入成功</span>"));
        assert!(rows[0].contains("帳號密碼 + OTP 驗證"));
        assert!(rows[0].contains("203.0.113.7"));
        assert!(rows[0].contains("Chrome 140 · Windows"));
        assert!(rows[0].contains("title=\"Mozilla/5.0 (Windows NT 10.0;"));
        assert!(rows[1].contains("<span class=\"outcome-failure\">登入失敗</span>"));
        assert!(rows[1].contains(">帳號密碼</td>"));
        assert!(rows[2].contains(">綁定</span>"));
        assert!(rows[2].contains(">google</td>"));
        assert!(rows[2].contains("2001:db8::1"));
        assert!(rows[2].contains("curl/8.0"));
        // Order kept (newest first, as given).
        assert!(html.find("14:05").expect("first") < html.find("14:03").expect("second"));
        assert!(html.contains("id=\"activity-warning\""));
        assert!(!html.contains("id=\"activity-empty\""));

        let en = render_account(&page(Lang::En, AccountTab::Activity, &roles));
        assert!(en.contains("<th scope=\"col\">Time</th>"));
        assert!(en.contains(">Signed in</span>"));
        assert!(en.contains(">Sign-in failed</span>"));
        assert!(en.contains(">Method set up</span>"));
        assert!(en.contains("Password + OTP"));
    }

    #[test]
    fn activity_empty_state() {
        let roles = roles();
        for (lang, text) in [
            (Lang::ZhTw, "目前沒有帳號活動紀錄。"),
            (Lang::En, "No account activity recorded yet."),
        ] {
            let html = render_account(&AccountPage {
                activity: &[],
                ..page(lang, AccountTab::Activity, &roles)
            });
            assert!(html.contains(&format!(
                "<p id=\"activity-empty\" class=\"empty-state\">{text}</p>"
            )));
            assert!(!html.contains("activity-row"));
            assert!(!html.contains("id=\"activity-table\""));
        }
    }

    #[test]
    fn activity_words() {
        let zh = &crate::ZH_TW;
        let cases = [
            ("login", "success", "登入成功"),
            ("login", "failure", "登入失敗"),
            ("login", "locked", "登入失敗（帳號暫時停用）"),
            ("login", "throttled", "登入失敗（嘗試次數過多）"),
            ("login", "use_certificate", "登入失敗（需使用自然人憑證）"),
            ("login", "weird", "登入（weird）"),
            ("lock", "locked", "帳號暫時停用"),
            ("lock", "success", "帳號暫時停用"),
            ("unlock", "success", "解除停用"),
            ("bind", "success", "綁定"),
            ("bind", "failure", "綁定（失敗）"),
            ("unbind", "success", "解除綁定"),
            ("unbind", "", "解除綁定"),
            ("rename", "success", "rename"),
            ("rename", "odd", "rename（odd）"),
        ];
        for (event, outcome, expected) in cases {
            assert_eq!(
                event_label(event, outcome, zh),
                expected,
                "{event}+{outcome}"
            );
        }
        let en = &crate::EN;
        assert_eq!(event_label("lock", "locked", en), "Account suspended");
        assert_eq!(event_label("unlock", "success", en), "Suspension lifted");
        assert_eq!(event_label("unbind", "success", en), "Method removed");
        assert_eq!(
            event_label("login", "throttled", en),
            "Sign-in failed (too many attempts)"
        );
        for (method, expected) in [
            ("password", "帳號密碼"),
            ("otp", "OTP 驗證"),
            ("certificate", "自然人憑證"),
            ("captcha", "驗證碼"),
            ("cli", "系統管理者"),
            ("oidc:google", "google"),
            ("oidc:edu", "edu"),
            ("password+captcha", "帳號密碼 + 驗證碼"),
            ("magic", "magic"),
            ("", ""),
        ] {
            assert_eq!(method_label(method, zh), expected, "{method}");
        }
        assert_eq!(method_label("cli", en), "System administrator");
        assert_eq!(method_label("certificate", en), "Citizen certificate");
        assert_eq!(outcome_class("login", "success"), "outcome-success");
        assert_eq!(outcome_class("login", "failure"), "outcome-failure");
        assert_eq!(outcome_class("lock", "locked"), "outcome-failure");
        assert_eq!(outcome_class("x", "y"), "outcome-other");
    }

    #[test]
    fn browser_summaries() {
        for (ua, expected) in [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0",
                "Edge 140 · Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0",
                "Firefox 145 · Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari 18 · iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile Safari/537.36",
                "Chrome 140 · Android",
            ),
            ("curl/8.0", "curl/8.0"),
            ("", ""),
        ] {
            assert_eq!(browser_summary(ua), expected);
        }
        let long = "x".repeat(100);
        let short = browser_summary(&long);
        assert_eq!(short.chars().count(), 48);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn zh_tw_settings_tab() {
        let roles = roles();
        let html = render_account(&page(Lang::ZhTw, AccountTab::Settings, &roles));
        assert!(html.contains(
            "<th scope=\"col\">授權方式</th><th scope=\"col\">綁定</th><th scope=\"col\">授權狀態</th>"
        ));
        // The manual's notes.
        assert!(html.contains("QR code 僅供該次頁面掃描使用"));
        assert!(html.contains("同一組外部帳號（Google 帳號、教育雲端帳號）僅能綁定在一組帳號上"));
        // OTP: bound, re-bind link.
        let otp = row(&html, "row-otp");
        assert!(otp.contains("<th scope=\"row\">OTP 驗證</th>"));
        assert!(otp.contains(
            "<a id=\"rebind-otp\" class=\"button button-secondary\" href=\"/.menshen/bind/otp\">重新綁定</a>"
        ));
        assert!(otp.contains("✓</span> 已綁定"));
        // Certificate: not yet available.
        let cert = row(&html, "row-certificate");
        assert!(cert.contains("<th scope=\"row\">自然人憑證</th>"));
        assert!(cert.contains("id=\"bind-certificate\""));
        assert!(cert.contains("type=\"button\" disabled"));
        assert!(cert.contains("本系統未開放自然人憑證綁定"));
        assert!(cert.contains("×</span> 未綁定"));
        // Google: bound.
        let google = row(&html, "row-oidc-google");
        assert!(google.contains("<th scope=\"row\">Google 帳號</th>"));
        assert!(
            google.contains("✓</span> 已綁定：<span class=\"bound-as\">wang01@gmail.com</span>")
        );
        // Linking is a POST with the token and the current password, never a link.
        assert!(google.contains(
            "<form id=\"rebind-google-form\" class=\"inline-form\" method=\"post\" action=\"/.menshen/oidc/google/start\">"
        ));
        assert!(google.contains("<input type=\"hidden\" name=\"purpose\" value=\"bind\">"));
        assert!(google.contains(
            "<button id=\"rebind-google\" class=\"button button-secondary\" type=\"submit\">重新綁定</button>"
        ));
        assert!(google.contains("<label for=\"current-proof-bind-google\">目前的密碼</label>"));
        assert!(google.contains(
            "id=\"current-proof-unbind-google\" class=\"reauth-input\" name=\"current_password\" type=\"password\""
        ));
        assert!(!html.contains("start?purpose=bind"));
        assert!(google.contains(
            "<form id=\"unbind-google-form\" class=\"inline-form\" method=\"post\" action=\"/.menshen/account/oidc/google/unbind\">"
        ));
        assert!(google.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-acc-9\">"));
        assert!(google.contains(
            "<button id=\"unbind-google\" class=\"button button-link button-danger\" type=\"submit\">解除綁定</button>"
        ));
        assert!(!google.contains("id=\"bind-google\""));
        // edu: not bound, may bind.
        let edu = row(&html, "row-oidc-edu");
        assert!(edu.contains("<th scope=\"row\">教育雲端帳號</th>"));
        assert!(edu.contains("×</span> 未綁定"));
        assert!(edu.contains(
            "<button id=\"bind-edu\" class=\"button button-secondary\" type=\"submit\">綁定</button>"
        ));
        assert!(!edu.contains("rebind-edu"));
        assert!(!edu.contains("unbind-edu"));
        assert!(edu.contains("<form id=\"bind-edu-form\""));
        assert_forms_carry_csrf(&html, "csrf-acc-9");
        assert_no_inline_code(&html);
    }

    #[test]
    fn english_settings_tab() {
        let roles = roles();
        let html = render_account(&AccountPage {
            otp_bound: false,
            certificate: CertificateRow::Available {
                href: "/.menshen/bind/certificate",
            },
            ..page(Lang::En, AccountTab::Settings, &roles)
        });
        assert!(html.contains("<th scope=\"col\">Method</th>"));
        assert!(html.contains("<th scope=\"col\">Status</th>"));
        let otp = row(&html, "row-otp");
        assert!(otp.contains(
            "<a id=\"rebind-otp\" class=\"button button-primary\" href=\"/.menshen/bind/otp\">Set up</a>"
        ));
        assert!(otp.contains("×</span> Not set up"));
        let cert = row(&html, "row-certificate");
        assert!(cert.contains(
            "<a id=\"bind-certificate\" class=\"button button-secondary\" href=\"/.menshen/bind/certificate\">Set up</a>"
        ));
        let google = row(&html, "row-oidc-google");
        assert!(
            google.contains("✓</span> Linked: <span class=\"bound-as\">wang01@gmail.com</span>")
        );
        assert!(google.contains(">Link again</button>"));
        assert!(google.contains(">Current password</label>"));
        assert!(google.contains(">Unlink</button>"));
        let edu = row(&html, "row-oidc-edu");
        assert!(edu.contains(">Link</button>"));
        assert!(edu.contains("×</span> Not linked"));
        assert!(html.contains("Each external account (Google 帳號, 教育雲端帳號)"));
        assert!(!html.contains("授權方式"));
    }

    #[test]
    fn a_bound_card_shows_its_holder_and_can_be_replaced() {
        let roles = vec!["staff".to_string()];
        let html = render_account(&AccountPage {
            certificate: CertificateRow::Rebindable {
                href: "/.menshen/bind/certificate",
            },
            certificate_holder: Some(CertificateHolder {
                name: "王<小>明",
                id_last4: "6789",
                bound_at: "2026-12-01 09:30",
            }),
            ..page(Lang::ZhTw, AccountTab::Settings, &roles)
        });
        let cert = row(&html, "row-certificate");
        assert!(
            cert.contains("<p id=\"certificate-holder\" class=\"cell-note\">持卡人 王&#60;小&#62;明（身分證末四碼 6789），2026-12-01 09:30 綁定</p>"),
            "{cert}"
        );
        assert!(cert.contains("id=\"rebind-certificate\""));
        let no_id = render_account(&AccountPage {
            certificate: CertificateRow::Bound,
            certificate_holder: Some(CertificateHolder {
                name: "王小明",
                id_last4: "",
                bound_at: "2026-12-01 09:30",
            }),
            ..page(Lang::En, AccountTab::Settings, &roles)
        });
        assert!(row(&no_id, "row-certificate").contains("Holder 王小明, set up 2026-12-01 09:30"));
    }

    #[test]
    fn certificate_rows() {
        let roles = roles();
        let aa = render_account(&AccountPage {
            certificate: CertificateRow::NotForAa,
            ..page(Lang::ZhTw, AccountTab::Settings, &roles)
        });
        let cert = row(&aa, "row-certificate");
        assert!(cert.contains(
            "<p id=\"certificate-note\" class=\"cell-note\">學校管理者(AA帳號)僅提供 OTP 驗證綁定</p>"
        ));
        assert!(!cert.contains("<a "));
        assert!(!cert.contains("<button"));
        assert!(cert.contains("status status-na"));
        assert!(cert.contains("—</span> 不適用"));
        let en = render_account(&AccountPage {
            certificate: CertificateRow::NotForAa,
            ..page(Lang::En, AccountTab::Settings, &roles)
        });
        assert!(row(&en, "row-certificate").contains("can only use OTP"));

        let bound = render_account(&AccountPage {
            certificate: CertificateRow::Bound,
            ..page(Lang::ZhTw, AccountTab::Settings, &roles)
        });
        let cert = row(&bound, "row-certificate");
        assert!(cert.contains("✓</span> 已綁定"));
        assert!(cert.contains("如需重新綁定，請洽客服人員"));
        assert!(!cert.contains("bind-certificate"));
    }

    #[test]
    fn the_mobile_row_offers_binding_and_names_the_holder() {
        let roles = roles();
        let none = render_account(&page(Lang::ZhTw, AccountTab::Settings, &roles));
        assert!(!none.contains("row-mobile"));
        let offered = render_account(&AccountPage {
            mobile: Some(CertificateRow::Available {
                href: "/.menshen/bind/mobile",
            }),
            ..page(Lang::ZhTw, AccountTab::Settings, &roles)
        });
        let r = row(&offered, "row-mobile");
        assert!(
            r.contains(r#"id="bind-mobile""#) && r.contains("/.menshen/bind/mobile"),
            "{r}"
        );
        assert!(r.contains("×</span> 未綁定"), "{r}");
        let bound = render_account(&AccountPage {
            mobile: Some(CertificateRow::Rebindable {
                href: "/.menshen/bind/mobile",
            }),
            mobile_holder: Some(CertificateHolder {
                name: "王<小>明",
                id_last4: "6789",
                bound_at: "2026-12-04 10:00",
            }),
            ..page(Lang::ZhTw, AccountTab::Settings, &roles)
        });
        let r = row(&bound, "row-mobile");
        assert!(
            r.contains("王&#60;小&#62;明（身分證末四碼 6789），2026-12-04 10:00 綁定"),
            "{r}"
        );
        assert!(
            r.contains(r#"id="rebind-mobile""#) && r.contains("✓</span> 已綁定"),
            "{r}"
        );
    }

    #[test]
    fn provider_needs_second_factor() {
        let roles = roles();
        let providers = [ProviderRow {
            id: "google",
            label: "Google 帳號",
            bound_as: None,
            may_bind: false,
        }];
        for (lang, text) in [
            (Lang::ZhTw, "請先綁定 OTP 驗證或自然人憑證"),
            (Lang::En, "Set up OTP or a citizen certificate first"),
        ] {
            let html = render_account(&AccountPage {
                otp_bound: false,
                providers: &providers,
                ..page(lang, AccountTab::Settings, &roles)
            });
            let google = row(&html, "row-oidc-google");
            assert!(google.contains(&format!(
                "<p id=\"oidc-note-google\" class=\"cell-note\">{text}</p>"
            )));
            assert!(!google.contains("<a "));
            assert!(!google.contains("<button"));
            assert!(!google.contains("purpose=bind"));
        }
    }

    #[test]
    fn no_providers() {
        let roles = roles();
        let html = render_account(&AccountPage {
            providers: &[],
            ..page(Lang::ZhTw, AccountTab::Settings, &roles)
        });
        assert!(!html.contains("row-oidc-"));
        assert!(!html.contains("同一組外部帳號"));
        assert!(html.contains("id=\"row-otp\""));
        // Only the logout form remains.
        assert_eq!(html.matches("<form ").count(), 1);
    }

    #[test]
    fn provider_ids_in_urls_are_encoded() {
        let roles = roles();
        let providers = [
            ProviderRow {
                id: "a b/c",
                label: "X",
                bound_as: Some("x@example.org"),
                may_bind: true,
            },
            ProviderRow {
                id: "q?x",
                label: "Y",
                bound_as: None,
                may_bind: true,
            },
        ];
        let html = render_account(&AccountPage {
            providers: &providers,
            ..page(Lang::ZhTw, AccountTab::Settings, &roles)
        });
        assert!(html.contains("action=\"/.menshen/oidc/a%20b%2Fc/start\""));
        assert!(html.contains("action=\"/.menshen/account/oidc/a%20b%2Fc/unbind\""));
        assert!(html.contains("action=\"/.menshen/oidc/q%3Fx/start\""));
    }

    #[test]
    fn messages() {
        let roles = roles();
        let label = || "Google 帳號".to_owned();
        let cases = [
            (
                AccountMessage::OidcBound { label: label() },
                "message-success",
                "Google 帳號綁定成功。",
                "Google 帳號 linked.",
            ),
            (
                AccountMessage::OidcUnbound { label: label() },
                "message-success",
                "Google 帳號已解除綁定。",
                "Google 帳號 unlinked.",
            ),
            (
                AccountMessage::OidcConflict { label: label() },
                "message-error",
                "此Google 帳號已綁定於其他帳號",
                "This Google 帳號 is already linked to another account",
            ),
            (
                AccountMessage::OidcNeedsSecondFactor,
                "message-error",
                "請先綁定 OTP 驗證或自然人憑證，才能綁定Google 帳號、教育雲端帳號。",
                "Set up OTP or a citizen certificate before linking",
            ),
            (
                AccountMessage::OtpRebound,
                "message-success",
                "OTP 驗證重新綁定成功",
                "OTP set up again",
            ),
            (
                AccountMessage::Failed,
                "message-error",
                "操作未完成",
                "That did not work",
            ),
        ];
        for (message, class, zh, en) in cases {
            for (lang, text) in [(Lang::ZhTw, zh), (Lang::En, en)] {
                for tab in AccountTab::ALL {
                    let html = render_account(&AccountPage {
                        message: Some(message.clone()),
                        ..page(lang, tab, &roles)
                    });
                    let boxed = part(&html, "<div id=\"message\"", "</div>");
                    assert!(boxed.contains("role=\"alert\""), "{boxed}");
                    assert!(
                        boxed.contains(&format!("class=\"message {class}\"")),
                        "{boxed}"
                    );
                    assert!(boxed.contains(text), "{message:?} {lang:?}: {boxed}");
                }
            }
        }
    }

    #[test]
    fn conflict_message_names_only_the_label() {
        let roles = roles();
        for (lang, template) in [
            (Lang::ZhTw, crate::ZH_TW.msg_oidc_conflict),
            (Lang::En, crate::EN.msg_oidc_conflict),
        ] {
            let html = render_account(&AccountPage {
                message: Some(AccountMessage::OidcConflict {
                    label: "教育雲端帳號".to_owned(),
                }),
                ..page(lang, AccountTab::Settings, &roles)
            });
            let boxed = part(&html, "<div id=\"message\"", "</div>");
            let text = &boxed[boxed.find('>').expect("open tag end") + 1..];
            assert_eq!(text, template.replace("{label}", "教育雲端帳號"));
            // Nothing but the fixed text and the label: no account names, no email.
            let rest = text.replace("教育雲端帳號", "");
            assert!(!rest.contains('@'));
            assert!(!rest.contains("wang01"));
            assert!(!rest.contains("王小明"));
            assert_eq!(
                template.matches('{').count(),
                template.matches("{label}").count()
            );
        }
    }

    #[test]
    fn everything_is_escaped() {
        let roles = vec!["<b>role</b>".to_owned()];
        let activity = [ActivityRow {
            when: "<i>when</i>",
            event: "<script>e</script>",
            method: "oidc:<img src=x>",
            outcome: "<u>o</u>",
            client_ip: "<ip>",
            user_agent: "\"><script>ua</script>",
        }];
        let providers = [ProviderRow {
            id: "\"><script>id",
            label: "<script>label</script>",
            bound_as: Some("<img src=x onerror=alert(1)>"),
            may_bind: true,
        }];
        for tab in AccountTab::ALL {
            let html = render_account(&AccountPage {
                csrf: "\"><script>",
                login_name: "<script>login</script>",
                display_name: "<script>name</script>",
                school_code: "<s>1</s>",
                email: "a&b@<x>",
                auth_method: "<script>m</script>",
                activity: &activity,
                certificate: CertificateRow::Available {
                    href: "\"><script>x</script>",
                },
                providers: &providers,
                message: Some(AccountMessage::OidcConflict {
                    label: "<script>m</script>".to_owned(),
                }),
                ..page(Lang::ZhTw, tab, &roles)
            });
            assert!(!html.contains("<script"), "{tab:?}");
            assert!(!html.contains("<img src=x"));
            assert!(!html.contains("<b>role"));
            assert!(!html.contains("<i>when"));
            assert!(!html.contains("<ip>"));
            assert!(!html.contains("<s>1"));
            assert!(html.contains("value=\"&#34;&#62;&#60;script&#62;\""));
            assert!(html.contains("&#60;script&#62;name&#60;/script&#62;"));
        }
    }
}
