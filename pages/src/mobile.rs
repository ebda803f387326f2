//! The mobile citizen certificate (行動自然人憑證) pages: the form (`GET /.menshen/mobile` to
//! sign in, `GET /.menshen/bind/mobile` to bind) where the person types their 身分證字號 /
//! 居留證號 and picks push or QR, and the waiting page that counts down while they approve in
//! the app (with the QR code drawn by the server when they chose it).
//!
//! Every failure has one sentence per language, here ([`MobileTexts::failures`]); the status
//! endpoint's JSON carries the same sentence, and the waiting page's script reloads the page
//! on a failure instead of holding texts of its own.

use crate::lang::Lang;
use crate::reauth::{ReauthField, ReauthView};
use crate::texts::Texts;
use crate::{MessageView, render_or_fallback};

/// Where the app is downloaded and registered (the slides' 第二步驟 and 第三步驟).
pub const FIDO_SITE: &str = "https://fido.moi.gov.tw/";

/// What the form is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MobilePurpose<'a> {
    /// Binding the mobile certificate to the signed-in account.
    Bind {
        display_name: &'a str,
        /// The forced first binding (back leads to the binding choice) or from the settings.
        forced: bool,
        /// The proof the form must carry (none on the forced first binding).
        reauth: ReauthField,
    },
    /// Signing in; `rd` is the validated return target.
    Login { rd: &'a str },
}

impl MobilePurpose<'_> {
    fn word(&self) -> &'static str {
        match self {
            MobilePurpose::Bind { .. } => "bind",
            MobilePurpose::Login { .. } => "login",
        }
    }
}

/// Push to the bound phone, or a QR code to scan in the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MobileMode {
    Push,
    Qr,
}

/// A failure to show above the form: a code of [`MobileTexts::failures`] and, for `locked`,
/// the time the suspension ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileFailure {
    pub code: String,
    pub until: String,
}

/// Everything the form page shows.
#[derive(Debug, Clone)]
pub struct MobilePage<'a> {
    pub lang: Lang,
    pub site_name: &'a str,
    pub purpose: MobilePurpose<'a>,
    /// The login form's CSRF cookie value (login) or the session's token (bind).
    pub csrf: &'a str,
    /// What the person typed, shown again after a mistake.
    pub id_number: &'a str,
    pub mode: MobileMode,
    pub failure: Option<MobileFailure>,
}

/// Everything the waiting page shows.
#[derive(Debug, Clone)]
pub struct MobileWaitPage<'a> {
    pub lang: Lang,
    pub site_name: &'a str,
    /// `login` or `bind`.
    pub purpose: &'a str,
    pub mode: MobileMode,
    /// The QR code (`data:` URI) for [`MobileMode::Qr`].
    pub qr_data_uri: Option<&'a str>,
    /// Seconds until the request expires.
    pub seconds_left: u64,
    /// The cancel form's token.
    pub csrf: &'a str,
    /// The typed ID, masked but for its last four characters (`******6789`).
    pub masked_id: &'a str,
}

/// The mobile pages' own sentences.
#[derive(Debug)]
pub struct MobileTexts {
    /// The login page's button (the slides' 行動自然人憑證APP登入).
    pub login_button: &'static str,
    pub title_login: &'static str,
    pub title_bind: &'static str,
    pub lead_login: &'static str,
    pub lead_bind: &'static str,
    pub id_label: &'static str,
    pub id_hint: &'static str,
    pub mode_legend: &'static str,
    pub mode_push: &'static str,
    pub mode_qr: &'static str,
    pub submit: &'static str,
    pub back_login: &'static str,
    pub back_bind: &'static str,
    pub steps_heading: &'static str,
    /// The registration steps of the slides (download the app, register with the card).
    pub steps: &'static [&'static str],
    pub site_link: &'static str,
    pub wait_title: &'static str,
    pub wait_push: &'static str,
    pub wait_qr: &'static str,
    pub wait_for_id: &'static str,
    /// Contains `{s}`: the seconds left.
    pub countdown: &'static str,
    pub qr_alt: &'static str,
    pub cancel: &'static str,
    pub noscript_done: &'static str,
    pub bind_success: &'static str,
    /// The row of the binding table and of 登入設定.
    pub row_label: &'static str,
    pub row_bind: &'static str,
    /// Contains `{name}`, `{last4}`, `{date}`.
    pub row_holder: &'static str,
    /// Failure sentences by code; `locked` contains `{until}`.
    pub failures: &'static [(&'static str, &'static str)],
}

pub const MOBILE_ZH_TW: MobileTexts = MobileTexts {
    login_button: "行動自然人憑證APP登入",
    title_login: "行動自然人憑證APP登入",
    title_bind: "行動自然人憑證綁定",
    lead_login: "請輸入您的身分證字號，並在手機的行動自然人憑證APP上以生物辨識確認登入。",
    lead_bind: "請輸入您的身分證字號，並在手機的行動自然人憑證APP上以生物辨識確認，完成行動自然人憑證綁定。",
    id_label: "身分證字號 / 居留證號",
    id_hint: "請輸入您的身分證字號，例如 A123456789",
    mode_legend: "確認方式",
    mode_push: "推播到已綁定的手機",
    mode_qr: "掃描 QR Code",
    submit: "送出",
    back_login: "返回登入首頁",
    back_bind: "返回綁定頁面",
    steps_heading: "尚未使用行動自然人憑證？",
    steps: &[
        "第一步驟：請至App Store或Google Play下載行動自然人憑證APP。",
        "第二步驟：在電腦上開啟行動自然人憑證網站，點選【立即註冊行動自然人憑證】；註冊綁定只可電腦操作，請使用讀卡機及自然人憑證，並輸入PIN碼進行驗證。",
        "第三步驟：網站顯示QRcode後，在APP點選【綁定裝置】按鈕並掃描網站上的QRcode進行綁定，再依提示完成生物辨識。",
    ],
    site_link: "行動自然人憑證網站",
    wait_title: "等待手機確認",
    wait_push: "已推播至您的手機，請開啟行動自然人憑證APP，確認識別/簽章提示訊息後點選同意，並進行生物辨識。",
    wait_qr: "請開啟行動自然人憑證APP掃描下方QRcode，確認識別/簽章提示訊息後點選同意，並進行生物辨識。",
    wait_for_id: "身分證字號：",
    countdown: "剩餘 {s} 秒",
    qr_alt: "以行動自然人憑證APP掃描此QRcode",
    cancel: "取消",
    noscript_done: "已在手機上完成，繼續",
    bind_success: "行動自然人憑證綁定成功，請以行動自然人憑證重新登入。",
    row_label: "行動自然人憑證",
    row_bind: "行動自然人憑證綁定",
    row_holder: "{name}（身分證末四碼 {last4}），{date} 綁定",
    failures: &[
        ("bad_id", "身分證字號 / 居留證號格式錯誤，請重新輸入。"),
        ("bad_mode", "請選擇確認方式。"),
        (
            "no_device",
            "此身分證字號尚未在手機綁定行動自然人憑證APP，無法推播。請依下方步驟註冊，或改用【掃描 QR Code】。",
        ),
        (
            "unknown_id",
            "此身分證字號尚未註冊行動自然人憑證，請依下方步驟完成註冊後再試。",
        ),
        ("declined", "您已在手機上拒絕此次登入。"),
        ("expired", "等候逾時，請重新送出。"),
        ("used", "此次登入要求已使用過，請重新送出。"),
        ("cancelled", "已取消，請重新送出。"),
        (
            "not_bound",
            "此行動自然人憑證尚未綁定門神帳號，請先以帳號密碼登入後至【登入設定】綁定。",
        ),
        (
            "already_bound",
            "此身分證字號已綁定其他帳號，請洽學校系統管理者。",
        ),
        ("revoked", "此憑證已被廢止，無法登入。"),
        (
            "revocation_unavailable",
            "目前無法取得憑證廢止清冊，暫時無法確認憑證狀態，請稍後再試；如持續發生請洽學校系統管理者。",
        ),
        (
            "untrusted",
            "此憑證無法驗證（非內政部憑證管理中心簽發或已過期）。",
        ),
        (
            "invalid_result",
            "收到的簽章結果驗證失敗，已拒絕。請重新送出；若持續發生請洽系統管理者。",
        ),
        (
            "id_mismatch",
            "簽章的憑證不屬於您輸入的身分證字號，已拒絕。",
        ),
        (
            "identity_mismatch",
            "憑證上的姓名或身分證字號末四碼與帳號資料不符，請洽學校系統管理者。",
        ),
        ("aa_not_allowed", "學校管理者(AA帳號)僅提供 OTP 驗證。"),
        ("account_disabled", "此帳號已停用，請洽學校系統管理者。"),
        ("locked", "帳號暫停使用至 {until}，請稍後再試。"),
        ("throttled", "操作過於頻繁，請稍候一分鐘再試。"),
        ("form_expired", "頁面已過期，請重新送出。"),
        (
            "reauth_missing",
            "請輸入目前的密碼（或驗證碼）以確認是您本人。",
        ),
        ("reauth_wrong", "目前的密碼（或驗證碼）錯誤。"),
        (
            "reauth_unavailable",
            "此帳號無法在此確認身分，請洽學校系統管理者重設。",
        ),
        (
            "unavailable",
            "內政部行動自然人憑證服務暫時無法使用，請稍後再試，或改用其他登入方式。",
        ),
    ],
};

pub const MOBILE_EN: MobileTexts = MobileTexts {
    login_button: "Sign in with the mobile citizen certificate app",
    title_login: "Sign in with the mobile citizen certificate",
    title_bind: "Bind the mobile citizen certificate",
    lead_login: "Type your national ID number, then approve the sign-in with your fingerprint or face in the mobile citizen certificate app.",
    lead_bind: "Type your national ID number, then approve in the mobile citizen certificate app with your fingerprint or face to bind it.",
    id_label: "National ID / resident certificate number",
    id_hint: "Your ID number, e.g. A123456789",
    mode_legend: "How to approve",
    mode_push: "Notify my bound phone",
    mode_qr: "Scan a QR code",
    submit: "Send",
    back_login: "Back to sign-in",
    back_bind: "Back to binding",
    steps_heading: "Not using the mobile citizen certificate yet?",
    steps: &[
        "Step 1: install the mobile citizen certificate app (行動自然人憑證) from the App Store or Google Play.",
        "Step 2: on a computer, open the mobile citizen certificate site and choose Register (立即註冊); registering needs a card reader, your citizen certificate card and its PIN.",
        "Step 3: when the site shows a QR code, tap Bind device (綁定裝置) in the app, scan it, and confirm with your fingerprint or face.",
    ],
    site_link: "mobile citizen certificate site",
    wait_title: "Waiting for your phone",
    wait_push: "A request was sent to your phone: open the mobile citizen certificate app, check the request and approve it with your fingerprint or face.",
    wait_qr: "Open the mobile citizen certificate app and scan this QR code, check the request and approve it with your fingerprint or face.",
    wait_for_id: "ID number: ",
    countdown: "{s} seconds left",
    qr_alt: "Scan this QR code with the mobile citizen certificate app",
    cancel: "Cancel",
    noscript_done: "I have approved on my phone, continue",
    bind_success: "The mobile citizen certificate is bound. Please sign in again with it.",
    row_label: "Mobile citizen certificate",
    row_bind: "Set up mobile certificate",
    row_holder: "{name} (ID ending {last4}), set up {date}",
    failures: &[
        (
            "bad_id",
            "That is not a valid national ID or resident certificate number.",
        ),
        ("bad_mode", "Choose how to approve."),
        (
            "no_device",
            "No phone is bound to this ID in the mobile citizen certificate app, so no notification can be sent. Register as shown below, or choose Scan a QR code.",
        ),
        (
            "unknown_id",
            "This ID is not registered for the mobile citizen certificate. Register as shown below and try again.",
        ),
        ("declined", "The sign-in was declined on the phone."),
        ("expired", "The request timed out. Please send it again."),
        (
            "used",
            "This request was already used. Please send it again.",
        ),
        ("cancelled", "Cancelled. Send the form again to retry."),
        (
            "not_bound",
            "This mobile certificate is not bound to a Menshen account. Sign in with your password first and bind it in the sign-in settings.",
        ),
        (
            "already_bound",
            "This ID is bound to another account. Please contact the school's administrator.",
        ),
        ("revoked", "This certificate has been revoked."),
        (
            "revocation_unavailable",
            "The certificate revocation list is not available right now, so the certificate's status cannot be confirmed. Please try later; tell the administrator if it persists.",
        ),
        (
            "untrusted",
            "This certificate cannot be verified (not issued by MOICA, or expired).",
        ),
        (
            "invalid_result",
            "The signed answer failed verification and was refused. Please try again; contact the administrator if it keeps happening.",
        ),
        (
            "id_mismatch",
            "The certificate that signed does not belong to the ID you typed; refused.",
        ),
        (
            "identity_mismatch",
            "The name or ID digits on the certificate do not match the account. Please contact the school's administrator.",
        ),
        (
            "aa_not_allowed",
            "School administrator (AA) accounts use OTP only.",
        ),
        (
            "account_disabled",
            "This account is disabled. Please contact the school's administrator.",
        ),
        (
            "locked",
            "The account is suspended until {until}. Please try later.",
        ),
        (
            "throttled",
            "Too many requests; wait a minute and try again.",
        ),
        (
            "form_expired",
            "The page expired. Please send the form again.",
        ),
        (
            "reauth_missing",
            "Enter your current password (or code) to confirm it is you.",
        ),
        ("reauth_wrong", "The current password (or code) is wrong."),
        (
            "reauth_unavailable",
            "This account cannot confirm itself here; ask the administrator to reset it.",
        ),
        (
            "unavailable",
            "MOI's mobile citizen certificate service is temporarily unavailable. Please try later, or use another sign-in method.",
        ),
    ],
};

impl Lang {
    /// The mobile certificate pages' sentences in this language.
    pub fn mobile_texts(self) -> &'static MobileTexts {
        match self {
            Lang::ZhTw => &MOBILE_ZH_TW,
            Lang::En => &MOBILE_EN,
        }
    }
}

impl MobileTexts {
    /// The sentence for a failure code (the `unavailable` one for an unknown code), with
    /// `{until}` filled in.
    pub fn failure(&self, code: &str, until: &str) -> String {
        let text = self
            .failures
            .iter()
            .find(|(c, _)| *c == code)
            .or_else(|| self.failures.iter().find(|(c, _)| *c == "unavailable"))
            .map_or("", |(_, t)| *t);
        text.replace("{until}", until)
    }
}

/// The failures after which the registration steps are shown prominently.
fn shows_steps(code: &str) -> bool {
    matches!(code, "no_device" | "unknown_id")
}

#[derive(askama::Template)]
#[template(path = "mobile.html")]
struct MobileTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    m: &'static MobileTexts,
    subtitle: &'a str,
    page: &'a MobilePage<'a>,
    title: &'static str,
    lead: &'static str,
    display_name: Option<&'a str>,
    purpose: &'static str,
    rd: &'a str,
    qr: bool,
    message: Option<MessageView>,
    steps_open: bool,
    back_href: String,
    back_label: &'static str,
    fido_site: &'static str,
    reauth: Option<ReauthView>,
    reauth_id: &'static str,
}

/// Renders the form page.
pub fn render_mobile(page: &MobilePage) -> String {
    let t = page.lang.texts();
    let m = page.lang.mobile_texts();
    let (title, lead, display_name, rd, back_href, back_label, reauth) = match page.purpose {
        MobilePurpose::Bind {
            display_name,
            forced,
            reauth,
        } => (
            m.title_bind,
            m.lead_bind,
            Some(display_name),
            "",
            if forced {
                "/.menshen/bind"
            } else {
                "/.menshen/account?tab=settings"
            }
            .to_owned(),
            m.back_bind,
            reauth.view(t),
        ),
        MobilePurpose::Login { rd } => (
            m.title_login,
            m.lead_login,
            None,
            rd,
            format!(
                "/.menshen/login?rd={}",
                crate::login::encode_query_value(rd)
            ),
            m.back_login,
            None,
        ),
    };
    let message = page
        .failure
        .as_ref()
        .map(|f| MessageView::error(&m.failure(&f.code, &f.until)));
    render_or_fallback(&MobileTemplate {
        html_lang: page.lang.html_lang(),
        t,
        m,
        subtitle: crate::subtitle(page.site_name, t),
        page,
        title,
        lead,
        display_name,
        purpose: page.purpose.word(),
        rd,
        qr: page.mode == MobileMode::Qr,
        message,
        steps_open: page.failure.as_ref().is_some_and(|f| shows_steps(&f.code)),
        back_href,
        back_label,
        fido_site: FIDO_SITE,
        reauth,
        reauth_id: "current-proof",
    })
}

#[derive(askama::Template)]
#[template(path = "mobile_wait.html")]
struct MobileWaitTemplate<'a> {
    html_lang: &'static str,
    m: &'static MobileTexts,
    subtitle: &'a str,
    page: &'a MobileWaitPage<'a>,
    lead: &'static str,
    countdown: String,
    wait_href: String,
    status_href: String,
}

/// Renders the waiting page.
pub fn render_mobile_wait(page: &MobileWaitPage) -> String {
    let t = page.lang.texts();
    let m = page.lang.mobile_texts();
    let purpose = crate::login::encode_query_value(page.purpose);
    render_or_fallback(&MobileWaitTemplate {
        html_lang: page.lang.html_lang(),
        m,
        subtitle: crate::subtitle(page.site_name, t),
        page,
        lead: match page.mode {
            MobileMode::Push => m.wait_push,
            MobileMode::Qr => m.wait_qr,
        },
        countdown: m.countdown.replace("{s}", &page.seconds_left.to_string()),
        wait_href: format!("/.menshen/mobile/wait?purpose={purpose}"),
        status_href: format!("/.menshen/mobile/status?purpose={purpose}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(failure: Option<&str>) -> String {
        render_mobile(&MobilePage {
            lang: Lang::ZhTw,
            site_name: "學籍系統",
            purpose: MobilePurpose::Login {
                rd: "/students?id=7&x=<y>",
            },
            csrf: "CSRF-TOKEN",
            id_number: "A12345678<",
            mode: MobileMode::Push,
            failure: failure.map(|code| MobileFailure {
                code: code.to_owned(),
                until: "10:30".to_owned(),
            }),
        })
    }

    #[test]
    fn the_login_form_carries_its_fields_and_escapes_input() {
        let html = login(None);
        assert!(html.contains("行動自然人憑證APP登入"), "{html}");
        assert!(html.contains(r#"action="/.menshen/mobile""#), "{html}");
        assert!(html.contains(r#"name="id_number""#));
        assert!(html.contains(r#"value="A12345678&#60;""#), "{html}");
        assert!(html.contains(r#"name="purpose" value="login""#));
        assert!(html.contains(r#"name="csrf" value="CSRF-TOKEN""#));
        assert!(
            html.contains(r#"value="/students?id=7&#38;x=&#60;y&#62;""#),
            "{html}"
        );
        assert!(html.contains(r#"value="push" checked"#), "{html}");
        assert!(html.contains("推播到已綁定的手機") && html.contains("掃描 QR Code"));
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains("id=\"message\""));
    }

    #[test]
    fn failures_have_sentences_in_both_languages() {
        for texts in [&MOBILE_ZH_TW, &MOBILE_EN] {
            for code in [
                "no_device",
                "unknown_id",
                "declined",
                "expired",
                "not_bound",
                "unavailable",
                "revoked",
                "untrusted",
                "invalid_result",
                "id_mismatch",
                "aa_not_allowed",
                "locked",
            ] {
                assert!(
                    texts.failures.iter().any(|(c, _)| *c == code),
                    "{code} missing"
                );
            }
            assert!(texts.failure("locked", "10:30").contains("10:30"));
            assert_eq!(
                texts.failure("no-such-code", ""),
                texts.failure("unavailable", "")
            );
        }
        let html = login(Some("no_device"));
        assert!(html.contains("尚未在手機綁定"), "{html}");
        // The registration steps are open after "no device".
        assert!(
            html.contains("<details id=\"mobile-steps\" class=\"bind-notes\" open>"),
            "{html}"
        );
        assert!(!login(Some("declined")).contains("mobile-steps\" class=\"bind-notes\" open"));
    }

    #[test]
    fn the_bind_form_asks_for_the_proof_outside_the_forced_binding() {
        let render = |forced| {
            render_mobile(&MobilePage {
                lang: Lang::En,
                site_name: "",
                purpose: MobilePurpose::Bind {
                    display_name: "王小明",
                    forced,
                    reauth: if forced {
                        ReauthField::None
                    } else {
                        ReauthField::Password
                    },
                },
                csrf: "S",
                id_number: "",
                mode: MobileMode::Qr,
                failure: None,
            })
        };
        let forced = render(true);
        assert!(forced.contains(r#"name="purpose" value="bind""#));
        assert!(forced.contains(r#"href="/.menshen/bind""#));
        assert!(!forced.contains("current_password"));
        assert!(forced.contains(r#"value="qr" checked"#), "{forced}");
        let added = render(false);
        assert!(added.contains(r#"name="current_password""#));
        assert!(added.contains("/.menshen/account?tab=settings"));
    }

    #[test]
    fn the_waiting_page_counts_down_and_shows_the_qr_code() {
        let html = render_mobile_wait(&MobileWaitPage {
            lang: Lang::ZhTw,
            site_name: "",
            purpose: "login",
            mode: MobileMode::Qr,
            qr_data_uri: Some("data:image/svg+xml;base64,AAAA"),
            seconds_left: 118,
            csrf: "C",
            masked_id: "******6789",
        });
        assert!(html.contains("剩餘 118 秒"), "{html}");
        assert!(html.contains(r#"src="data:image/svg+xml;base64,AAAA""#));
        assert!(html.contains(r#"data-status="/.menshen/mobile/status?purpose=login""#));
        assert!(html.contains(r#"data-seconds="118""#));
        assert!(html.contains("******6789"));
        assert!(html.contains(r#"action="/.menshen/mobile/cancel""#));
        assert!(html.contains("/.menshen/static/mobile.js"));
        assert!(!html.contains("<script>"));
    }
}
