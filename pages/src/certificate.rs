//! The citizen digital certificate (自然人憑證) pages: binding a card
//! (`GET /.menshen/bind/certificate`) and signing in with it (`GET /.menshen/certificate`).
//!
//! Both are the manual's check page: the notes, the check table (operating system, browser,
//! the HiPKI cross-platform web component and its version, reader and card, PIN) with
//! 重新檢測, and the 登入 button. The work happens in `certificate.js`, which talks to the
//! component on the user's computer and to Menshen's JSON endpoints; the page hands it its
//! settings as `data-` attributes and every sentence it may show as hidden `data-msg`
//! elements, so the script holds no text of its own and the page needs no inline script.

use crate::lang::Lang;
use crate::reauth::{ReauthField, ReauthView};
use crate::render_or_fallback;
use crate::texts::Texts;

/// The MOI certification authority's site (unlocking a card, forgotten PIN).
pub const MOICA_SITE: &str = "https://moica.nat.gov.tw/";
/// Its questions and answers (1201 IC 卡檢測重寫).
pub const MOICA_FAQ: &str = "https://moica.nat.gov.tw/faq.html";
/// Where the HiCOS card tool and the component are downloaded, unless configured otherwise.
pub const DEFAULT_DOWNLOAD_URL: &str = "https://moica.nat.gov.tw/download_1.html";

/// What the page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePurpose<'a> {
    /// Binding a card to the signed-in account.
    Bind {
        display_name: &'a str,
        /// The forced first binding (back leads to the binding choice) or an addition from
        /// the account settings.
        forced: bool,
        /// The proof the challenge request must carry (none on the forced first binding).
        reauth: ReauthField,
    },
    /// Signing in with a bound card; `rd` is the validated return target.
    Login { rd: &'a str },
}

/// Everything the certificate page shows.
#[derive(Debug, Clone, Copy)]
pub struct CertificatePage<'a> {
    pub lang: Lang,
    /// The protected system's name (login only; may be empty).
    pub site_name: &'a str,
    pub purpose: CertificatePurpose<'a>,
    /// The CSRF token the JSON endpoints expect: the session's for a binding, the login
    /// form's cookie value for a login.
    pub csrf: &'a str,
    /// Origin of the HiPKI component, e.g. `http://localhost:61161`.
    pub component_url: &'a str,
    /// Oldest accepted component version, e.g. `1.3.4`.
    pub component_min_version: &'a str,
    /// Where to download the component (HiCOS card tool).
    pub download_url: &'a str,
}

/// The certificate pages' own sentences.
#[derive(Debug)]
pub struct CertificateTexts {
    /// The login page's button (the manual's 【自然人憑證登入】).
    pub login_button: &'static str,
    pub title_bind: &'static str,
    pub title_login: &'static str,
    pub lead_bind: &'static str,
    pub lead_login: &'static str,
    pub notes_heading: &'static str,
    pub note_card: &'static str,
    pub note_download_before: &'static str,
    pub download_link: &'static str,
    pub note_download_after: &'static str,
    pub note_pin_lock: &'static str,
    pub note_unlock_before: &'static str,
    pub moica_link: &'static str,
    pub note_unlock_after: &'static str,
    pub note_faq_before: &'static str,
    pub faq_link: &'static str,
    pub note_faq_after: &'static str,
    pub noscript: &'static str,
    pub col_item: &'static str,
    pub col_result: &'static str,
    pub col_status: &'static str,
    pub row_os: &'static str,
    pub row_browser: &'static str,
    pub row_component: &'static str,
    pub row_card: &'static str,
    pub row_pin: &'static str,
    pub checking: &'static str,
    pub pin_placeholder: &'static str,
    pub pin_wait: &'static str,
    pub recheck: &'static str,
    pub submit: &'static str,
    pub back_bind: &'static str,
    pub back_login: &'static str,
    pub bind_success: &'static str,
    pub ok: &'static str,
    /// What the script may say, by code: check results, progress, the component's return
    /// codes (`rc_<hex>`, `le_<hex>` for its `last_error`) and Menshen's JSON error codes
    /// (`err_<code>`). `{…}` placeholders are filled by the script.
    pub messages: &'static [(&'static str, &'static str)],
}

pub const CERTIFICATE_ZH_TW: CertificateTexts = CertificateTexts {
    login_button: "自然人憑證登入",
    title_bind: "自然人憑證綁定",
    title_login: "自然人憑證登入",
    lead_bind: "請將自然人憑證IC卡插入讀卡機，通過下列檢測後輸入PIN碼(卡片密碼)，點選【登入】按鈕完成自然人憑證登入綁定。",
    lead_login: "請將自然人憑證IC卡插入讀卡機，通過下列檢測後輸入PIN碼(卡片密碼)，點選【登入】按鈕。",
    notes_heading: "注意事項",
    note_card: "請使用自然人憑證IC卡並搭配讀卡機登入。",
    note_download_before: "請務必",
    download_link: "下載HiCOS卡片管理工具最新版本",
    note_download_after: "，方能完整支援自然人憑證之讀取及使用，以避免PIN碼(卡片密碼)被鎖或無法使用。",
    note_pin_lock: "注意：PIN碼(卡片密碼)輸入錯誤超過3次，將導致自然人憑證鎖卡。",
    note_unlock_before: "若忘記PIN碼(卡片密碼)及鎖卡需解碼，請至",
    moica_link: "內政部憑證管理網站",
    note_unlock_after: "辦理相關作業。",
    note_faq_before: "若出現「未安裝客戶端程式或未啟動服務應如何處理」訊息，請參閱內政部憑證管理網站",
    faq_link: "問答集「1201 IC卡檢測重寫」",
    note_faq_after: "進行相關檢測。",
    noscript: "此功能需要啟用瀏覽器的 JavaScript，請啟用後重新整理本頁。",
    col_item: "檢測項目",
    col_result: "檢測結果",
    col_status: "狀態",
    row_os: "作業系統",
    row_browser: "瀏覽器",
    row_component: "跨平台網頁讀卡元件",
    row_card: "讀卡機及憑證IC卡",
    row_pin: "PIN碼(卡片密碼)",
    checking: "檢測中…",
    pin_placeholder: "PIN碼",
    pin_wait: "請先通過以上項目檢測",
    recheck: "重新檢測",
    submit: "登入",
    back_bind: "返回綁定頁面",
    back_login: "返回登入首頁",
    bind_success: "自然人憑證綁定成功，請以自然人憑證重新登入。",
    ok: "確定",
    messages: &[
        ("ok", "通過"),
        ("failed", "未通過"),
        ("unknown", "無法辨識"),
        ("component_missing", "未安裝客戶端程式或未啟動服務"),
        ("component_version", "版本：{version}"),
        (
            "component_old",
            "版本：{version}（版本過舊，請更新至 {min} 以上後點選【重新檢測】）",
        ),
        (
            "component_bad",
            "讀卡元件回應無法辨識，請更新元件後點選【重新檢測】",
        ),
        (
            "reader_missing",
            "未偵測到讀卡機，請確認讀卡機是否已安裝妥當，安裝完畢請點選【重新檢測】按鈕",
        ),
        ("card_missing", "{reader} 未插入卡片"),
        (
            "card_hint",
            "請確認讀卡機是否已安裝妥當，安裝完畢請點選【重新檢測】按鈕",
        ),
        ("card_ok", "{reader} 卡號:[{serial}]"),
        (
            "card_no_signing",
            "{reader} 卡片中沒有簽章用憑證，請確認插入的是自然人憑證IC卡",
        ),
        ("needs_component", "請先通過以上項目檢測"),
        ("pin_ready", "輸入PIN碼(卡片密碼)"),
        ("pin_empty", "請輸入PIN碼(卡片密碼)。"),
        ("working_challenge", "準備中…"),
        ("working_sign", "請稍候，讀卡元件正在以卡片簽章…"),
        ("working_verify", "驗證憑證中…"),
        (
            "popup_blocked",
            "瀏覽器封鎖了讀卡元件的彈出視窗，請允許本網站開啟彈出視窗後再點選【登入】。",
        ),
        (
            "timeout",
            "等待讀卡元件回應逾時，請點選【重新檢測】後再試一次。",
        ),
        ("network", "無法連線至系統，請檢查網路連線後再試一次。"),
        // The component's return codes (ret_code) and PKCS#11 / card errors (last_error).
        (
            "rc_76000006",
            "未偵測到自然人憑證IC卡，請插入卡片後點選【重新檢測】。",
        ),
        (
            "rc_76100003",
            "未偵測到讀卡機，請確認讀卡機是否已安裝妥當，安裝完畢請點選【重新檢測】按鈕。",
        ),
        ("rc_76000998", "請輸入PIN碼(卡片密碼)。"),
        ("rc_76000999", "已取消簽章，請重新點選【登入】。"),
        (
            "rc_76100006",
            "卡片登入失敗，請確認PIN碼(卡片密碼)後再試一次。",
        ),
        (
            "rc_76000031",
            "讀卡元件不信任此網站，請確認網址是否正確，或洽系統管理者。",
        ),
        ("rc_7600000f", "此網域不允許使用讀卡元件，請洽系統管理者。"),
        (
            "rc_other",
            "讀卡元件發生錯誤（代碼 {code}），請點選【重新檢測】後再試一次。",
        ),
        (
            "le_a0",
            "PIN碼(卡片密碼)錯誤。輸入錯誤超過3次將導致自然人憑證鎖卡。",
        ),
        ("le_80000002", "PIN碼(卡片密碼)錯誤，尚可再試 2 次。"),
        (
            "le_80000001",
            "PIN碼(卡片密碼)錯誤，僅剩 1 次機會，再輸入錯誤將導致自然人憑證鎖卡。",
        ),
        (
            "le_a4",
            "自然人憑證已鎖卡，請至內政部憑證管理網站辦理解碼。",
        ),
        // Menshen's answers.
        (
            "err_malformed",
            "讀卡元件傳回的簽章格式有誤，請更新讀卡元件後再試一次。",
        ),
        (
            "err_not_rsa",
            "此卡片的憑證不是自然人憑證（金鑰類型不符）。",
        ),
        (
            "err_challenge_mismatch",
            "簽章內容與本次登入不符，請重新點選【登入】。",
        ),
        ("err_bad_signature", "簽章驗證失敗，請重新點選【登入】。"),
        (
            "err_untrusted_issuer",
            "此憑證不是由內政部憑證管理中心簽發，無法使用。",
        ),
        (
            "err_expired",
            "此自然人憑證已過期，請至戶政事務所辦理展期或重新申請。",
        ),
        (
            "err_not_yet_valid",
            "此自然人憑證尚未生效，請確認電腦日期時間是否正確。",
        ),
        ("err_wrong_key_usage", "此憑證不是簽章用憑證，無法使用。"),
        (
            "err_policy_missing",
            "此憑證不符合本系統要求的憑證政策，無法使用。",
        ),
        ("err_revoked", "此自然人憑證已廢止或停用，無法使用。"),
        (
            "err_ocsp_unavailable",
            "目前無法向憑證管理中心確認憑證狀態，請稍後再試。",
        ),
        (
            "err_issuer_expired",
            "簽發此憑證的憑證機構已失效，請申請新卡。",
        ),
        (
            "err_revocation_unavailable",
            "目前無法取得憑證廢止清冊，暫時無法確認憑證狀態，請稍後再試；如持續發生請洽系統管理者。",
        ),
        (
            "err_not_end_entity",
            "此憑證是憑證機構的憑證，不是自然人憑證，無法使用。",
        ),
        (
            "err_unsupported_extension",
            "此憑證含有本系統無法處理的必要延伸欄位，無法使用。",
        ),
        (
            "err_challenge_expired",
            "本次操作已逾時，請重新點選【登入】。",
        ),
        (
            "err_challenge_not_yours",
            "本次操作已失效，請重新整理頁面後再試一次。",
        ),
        ("err_csrf", "頁面已過期，請重新整理頁面後再試一次。"),
        ("err_no_session", "登入狀態已逾時，請重新登入後再綁定。"),
        (
            "err_aa_not_allowed",
            "學校管理者(AA帳號)僅提供 OTP 驗證綁定，無法使用自然人憑證。",
        ),
        (
            "err_identity_mismatch",
            "此自然人憑證的持有人與帳號資料不符。",
        ),
        (
            "err_already_bound",
            "此自然人憑證已綁定其他帳號，如有疑問請洽客服人員。",
        ),
        (
            "err_not_bound",
            "此自然人憑證尚未綁定帳號，請先以帳號密碼登入並完成自然人憑證綁定。",
        ),
        ("err_account_disabled", "此帳號已停用，請洽系統管理者。"),
        (
            "err_locked",
            "此帳號因多次驗證失敗暫停登入，請於 {until} 後再試。",
        ),
        ("err_unavailable", "系統暫時無法使用，請稍後再試。"),
        ("err_certificate_disabled", "本系統未開放自然人憑證登入。"),
        ("err_throttled", "嘗試次數過多，請稍候一分鐘再試。"),
        (
            "err_reauth_missing",
            "請輸入目前的密碼（或驗證APP的密碼）以確認是您本人。",
        ),
        (
            "err_reauth_wrong",
            "目前的密碼（或驗證APP的密碼）錯誤，未綁定。連續錯誤將暫停帳號。",
        ),
        (
            "err_reauth_unavailable",
            "此帳號無法在此確認身分，請洽客服人員協助變更驗證方式。",
        ),
        (
            "err_other",
            "發生錯誤（{code}），請重新整理頁面後再試一次。",
        ),
    ],
};

pub const CERTIFICATE_EN: CertificateTexts = CertificateTexts {
    login_button: "Citizen certificate (自然人憑證)",
    title_bind: "Set up citizen digital certificate",
    title_login: "Sign in with citizen digital certificate",
    lead_bind: "Insert your citizen digital certificate card into the reader. When the checks below pass, enter the card's PIN and choose Sign in to set the card up.",
    lead_login: "Insert your citizen digital certificate card into the reader. When the checks below pass, enter the card's PIN and choose Sign in.",
    notes_heading: "Please note",
    note_card: "Use your citizen digital certificate card with a card reader.",
    note_download_before: "Be sure to ",
    download_link: "download the latest HiCOS card tool",
    note_download_after: ", which reads the card fully and keeps its PIN from being locked or unusable.",
    note_pin_lock: "Warning: three wrong PIN entries lock the card.",
    note_unlock_before: "If you forgot the PIN or the card is locked, go to the ",
    moica_link: "MOI certification authority's site",
    note_unlock_after: ".",
    note_faq_before: "If you see \"client program not installed or service not started\", see the MOI certification authority's ",
    faq_link: "FAQ \"1201 IC card check\"",
    note_faq_after: ".",
    noscript: "This page needs JavaScript. Please enable it and reload the page.",
    col_item: "Check",
    col_result: "Result",
    col_status: "Status",
    row_os: "Operating system",
    row_browser: "Browser",
    row_component: "Card reader web component",
    row_card: "Card reader and card",
    row_pin: "PIN (card password)",
    checking: "Checking…",
    pin_placeholder: "PIN",
    pin_wait: "Pass the checks above first",
    recheck: "Check again",
    submit: "Sign in",
    back_bind: "Back to setup",
    back_login: "Back to sign-in",
    bind_success: "Your citizen digital certificate is set up. Please sign in again with the card.",
    ok: "OK",
    messages: &[
        ("ok", "Passed"),
        ("failed", "Failed"),
        ("unknown", "Not recognised"),
        (
            "component_missing",
            "Client program not installed or service not started",
        ),
        ("component_version", "Version: {version}"),
        (
            "component_old",
            "Version: {version} (too old: update to {min} or later, then choose Check again)",
        ),
        (
            "component_bad",
            "The component's answer was not understood. Update it, then choose Check again.",
        ),
        (
            "reader_missing",
            "No card reader found. Make sure the reader is installed, then choose Check again.",
        ),
        ("card_missing", "{reader}: no card inserted"),
        (
            "card_hint",
            "Make sure the reader is installed and the card inserted, then choose Check again.",
        ),
        ("card_ok", "{reader} card no. [{serial}]"),
        (
            "card_no_signing",
            "{reader}: the card has no signing certificate. Is it a citizen digital certificate card?",
        ),
        ("needs_component", "Pass the checks above first"),
        ("pin_ready", "Enter the card's PIN"),
        ("pin_empty", "Please enter the card's PIN."),
        ("working_challenge", "Preparing…"),
        (
            "working_sign",
            "Please wait: the component is signing with your card…",
        ),
        ("working_verify", "Checking the certificate…"),
        (
            "popup_blocked",
            "The browser blocked the component's pop-up window. Allow pop-ups for this site, then choose Sign in again.",
        ),
        (
            "timeout",
            "The card component did not answer in time. Choose Check again and try once more.",
        ),
        (
            "network",
            "Could not reach the system. Check your network connection and try again.",
        ),
        (
            "rc_76000006",
            "No card found. Insert your card, then choose Check again.",
        ),
        (
            "rc_76100003",
            "No card reader found. Make sure the reader is installed, then choose Check again.",
        ),
        ("rc_76000998", "Please enter the card's PIN."),
        (
            "rc_76000999",
            "Signing was cancelled. Choose Sign in to try again.",
        ),
        (
            "rc_76100006",
            "The card refused the sign-in. Check the PIN and try again.",
        ),
        (
            "rc_76000031",
            "The card component does not trust this site. Check the address or contact your administrator.",
        ),
        (
            "rc_7600000f",
            "This domain may not use the card component. Contact your administrator.",
        ),
        (
            "rc_other",
            "The card component reported an error (code {code}). Choose Check again and retry.",
        ),
        ("le_a0", "Wrong PIN. Three wrong PIN entries lock the card."),
        ("le_80000002", "Wrong PIN. Two tries left."),
        (
            "le_80000001",
            "Wrong PIN. One try left: another wrong PIN locks the card.",
        ),
        (
            "le_a4",
            "The card is locked. Unlock it at the MOI certification authority's site.",
        ),
        (
            "err_malformed",
            "The component sent a malformed signature. Update it and try again.",
        ),
        (
            "err_not_rsa",
            "This card's certificate is not a citizen digital certificate (wrong key type).",
        ),
        (
            "err_challenge_mismatch",
            "The signature does not match this sign-in. Choose Sign in again.",
        ),
        (
            "err_bad_signature",
            "The signature could not be verified. Choose Sign in again.",
        ),
        (
            "err_untrusted_issuer",
            "This certificate was not issued by the MOI certification authority.",
        ),
        (
            "err_expired",
            "This citizen digital certificate has expired.",
        ),
        (
            "err_not_yet_valid",
            "This citizen digital certificate is not valid yet. Check your computer's date and time.",
        ),
        ("err_wrong_key_usage", "This is not a signing certificate."),
        (
            "err_policy_missing",
            "This certificate does not carry the certificate policy this system requires.",
        ),
        (
            "err_revoked",
            "This citizen digital certificate has been revoked or suspended.",
        ),
        (
            "err_ocsp_unavailable",
            "The certificate's status cannot be confirmed with the certification authority right now. Please try again later.",
        ),
        (
            "err_issuer_expired",
            "The authority that issued this certificate is no longer valid. Please apply for a new card.",
        ),
        (
            "err_revocation_unavailable",
            "The certificate revocation list is not available right now, so the certificate's status cannot be confirmed. Please try again later, and tell your administrator if this persists.",
        ),
        (
            "err_not_end_entity",
            "This is a certification authority's certificate, not a citizen digital certificate.",
        ),
        (
            "err_unsupported_extension",
            "This certificate has a critical extension this system cannot process.",
        ),
        (
            "err_challenge_expired",
            "This attempt has expired. Choose Sign in again.",
        ),
        (
            "err_challenge_not_yours",
            "This attempt is no longer valid. Reload the page and try again.",
        ),
        ("err_csrf", "The page has expired. Reload it and try again."),
        (
            "err_no_session",
            "Your session has ended. Sign in again before setting up the card.",
        ),
        (
            "err_aa_not_allowed",
            "School administrator (AA) accounts can only use OTP.",
        ),
        (
            "err_identity_mismatch",
            "The card's holder does not match the account's records.",
        ),
        (
            "err_already_bound",
            "This card is already set up for another account. Contact the support desk if this is unexpected.",
        ),
        (
            "err_not_bound",
            "This card is not set up for any account yet. Sign in with your password first and set the card up.",
        ),
        (
            "err_account_disabled",
            "This account is disabled. Contact your administrator.",
        ),
        (
            "err_locked",
            "This account is suspended after repeated failures. Try again after {until}.",
        ),
        (
            "err_unavailable",
            "The system is temporarily unavailable. Please try again later.",
        ),
        (
            "err_certificate_disabled",
            "Citizen certificate sign-in is not offered here.",
        ),
        (
            "err_throttled",
            "Too many attempts from this address. Wait a minute and try again.",
        ),
        (
            "err_reauth_missing",
            "Enter your current password (or app code) to confirm it is you.",
        ),
        (
            "err_reauth_wrong",
            "The current password (or app code) is wrong; nothing was bound. Repeated mistakes suspend the account.",
        ),
        (
            "err_reauth_unavailable",
            "This account cannot confirm who you are here; ask the support desk to change the sign-in method.",
        ),
        (
            "err_other",
            "Something went wrong ({code}). Reload the page and try again.",
        ),
    ],
};

impl Lang {
    /// The certificate pages' sentences in this language.
    pub fn certificate_texts(self) -> &'static CertificateTexts {
        match self {
            Lang::ZhTw => &CERTIFICATE_ZH_TW,
            Lang::En => &CERTIFICATE_EN,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "certificate.html")]
struct CertificateTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    c: &'static CertificateTexts,
    subtitle: &'a str,
    page: &'a CertificatePage<'a>,
    title: &'static str,
    lead: &'static str,
    display_name: Option<&'a str>,
    purpose: &'static str,
    rd: &'a str,
    back_href: String,
    back_label: &'static str,
    messages: &'static [(&'static str, &'static str)],
    moica_site: &'static str,
    moica_faq: &'static str,
    reauth: Option<ReauthView>,
    reauth_id: &'static str,
}

/// Renders the certificate page.
pub fn render_certificate(page: &CertificatePage) -> String {
    let t = page.lang.texts();
    let c = page.lang.certificate_texts();
    let reauth = match page.purpose {
        CertificatePurpose::Bind { reauth, .. } => reauth.view(t),
        CertificatePurpose::Login { .. } => None,
    };
    let (title, lead, display_name, purpose, rd, back_href, back_label) = match page.purpose {
        CertificatePurpose::Bind {
            display_name,
            forced,
            ..
        } => (
            c.title_bind,
            c.lead_bind,
            Some(display_name),
            "bind",
            "",
            if forced {
                "/.menshen/bind"
            } else {
                "/.menshen/account?tab=settings"
            }
            .to_owned(),
            c.back_bind,
        ),
        CertificatePurpose::Login { rd } => (
            c.title_login,
            c.lead_login,
            None,
            "login",
            rd,
            format!(
                "/.menshen/login?rd={}",
                crate::login::encode_query_value(rd)
            ),
            c.back_login,
        ),
    };
    render_or_fallback(&CertificateTemplate {
        html_lang: page.lang.html_lang(),
        t,
        c,
        subtitle: crate::subtitle(page.site_name, t),
        page,
        title,
        lead,
        display_name,
        purpose,
        rd,
        back_href,
        back_label,
        messages: c.messages,
        moica_site: MOICA_SITE,
        moica_faq: MOICA_FAQ,
        reauth,
        reauth_id: "current-proof",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(lang: Lang) -> String {
        render_certificate(&CertificatePage {
            lang,
            site_name: "學籍系統",
            purpose: CertificatePurpose::Login {
                rd: "/students?id=7&x=<y>",
            },
            csrf: "CSRF-TOKEN",
            component_url: "http://localhost:61161",
            component_min_version: "1.3.4",
            download_url: DEFAULT_DOWNLOAD_URL,
        })
    }

    fn bind(forced: bool) -> String {
        render_certificate(&CertificatePage {
            lang: Lang::ZhTw,
            site_name: "",
            purpose: CertificatePurpose::Bind {
                display_name: "王<小>明",
                forced,
                reauth: if forced {
                    ReauthField::None
                } else {
                    ReauthField::Password
                },
            },
            csrf: "SESSION-CSRF",
            component_url: "http://127.0.0.1:4000",
            component_min_version: "1.3.4",
            download_url: "https://example.edu.tw/hicos",
        })
    }

    #[test]
    fn the_login_page_has_the_manuals_check_table_and_notes() {
        let html = login(Lang::ZhTw);
        assert!(html.contains("<h1 id=\"certificate-title\">自然人憑證登入</h1>"));
        for row in [
            "作業系統",
            "瀏覽器",
            "跨平台網頁讀卡元件",
            "讀卡機及憑證IC卡",
            "PIN碼(卡片密碼)",
        ] {
            assert!(html.contains(row), "check row {row}");
        }
        assert!(html.contains("<button id=\"recheck\""));
        assert!(html.contains(">重新檢測</button>"));
        assert!(html.contains("注意：PIN碼(卡片密碼)輸入錯誤超過3次，將導致自然人憑證鎖卡。"));
        assert!(html.contains("問答集「1201 IC卡檢測重寫」"));
        assert!(html.contains(&format!("href=\"{DEFAULT_DOWNLOAD_URL}\"")));
        assert!(html.contains("data-purpose=\"login\""));
        assert!(html.contains("data-component=\"http://localhost:61161\""));
        assert!(html.contains("data-csrf=\"CSRF-TOKEN\""));
        // The return target is escaped in the attribute and percent-encoded in the back link.
        assert!(html.contains("data-rd=\"/students?id=7&#38;x=&#60;y&#62;\""));
        assert!(html.contains("href=\"/.menshen/login?rd=/students%3Fid%3D7%26x%3D%3Cy%3E\""));
        // The PIN field waits for the checks; the script is external (CSP: no inline script).
        assert!(html.contains("id=\"pin\" name=\"pin\" type=\"password\""));
        assert!(html.contains("disabled aria-describedby=\"pin-hint\""));
        assert!(html.contains("<script src=\"/.menshen/static/certificate.js\"></script>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<title>自然人憑證登入 · 學籍系統 · 門神 Menshen</title>"));
    }

    #[test]
    fn every_message_reaches_the_script() {
        let html = login(Lang::ZhTw);
        for (code, text) in CERTIFICATE_ZH_TW.messages {
            assert!(
                html.contains(&format!("<span data-msg=\"{code}\">{text}</span>")),
                "message {code}"
            );
        }
        assert!(html.contains("data-msg=\"le_80000001\""));
        assert!(html.contains("data-msg=\"err_revoked\""));
    }

    #[test]
    fn both_languages_say_the_same_things() {
        let zh: Vec<&str> = CERTIFICATE_ZH_TW.messages.iter().map(|m| m.0).collect();
        let en: Vec<&str> = CERTIFICATE_EN.messages.iter().map(|m| m.0).collect();
        assert_eq!(zh, en);
        let mut unique = zh.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), zh.len(), "codes are unique");
        let html = login(Lang::En);
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("Sign in with citizen digital certificate"));
        assert!(html.contains(
            "<span data-msg=\"err_expired\">This citizen digital certificate has expired.</span>"
        ));
    }

    #[test]
    fn the_bind_page_names_the_account_and_leads_back() {
        let html = bind(true);
        assert!(html.contains("<h1 id=\"certificate-title\">自然人憑證綁定</h1>"));
        assert!(html.contains("王&#60;小&#62;明"));
        assert!(!html.contains("王<小>明"));
        assert!(html.contains("data-purpose=\"bind\""));
        assert!(html.contains("data-csrf=\"SESSION-CSRF\""));
        assert!(html.contains("data-component=\"http://127.0.0.1:4000\""));
        assert!(html.contains("href=\"/.menshen/bind\">返回綁定頁面</a>"));
        assert!(html.contains("href=\"https://example.edu.tw/hicos\""));
        assert!(html.contains("自然人憑證綁定成功"));
        assert!(bind(false).contains("href=\"/.menshen/account?tab=settings\""));
    }
}
