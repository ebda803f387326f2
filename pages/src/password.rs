//! Password self-service: 忘記密碼 (`/.menshen/password/forgot`, the mailed link's
//! `/.menshen/password/reset`), 修改密碼 (`/.menshen/password/change`), their result pages,
//! the help page (`/.menshen/help`: 忘記帳號 / 忘記密碼 / 帳號被暫停 / 換手機或換卡) and the
//! two mails (the reset link, the notice 您的密碼已變更).

use menshen_policies::password::{PasswordPolicy, PasswordProblem};

use crate::lang::Lang;
use crate::reauth::{ReauthField, ReauthView};
use crate::texts::Texts;
use crate::{MessageView, render_or_fallback, subtitle};

/// The sentences of these pages and mails in one language.
#[derive(Debug)]
pub struct PasswordTexts {
    pub forgot_title: &'static str,
    pub forgot_lead: &'static str,
    pub forgot_login_label: &'static str,
    pub forgot_login_hint: &'static str,
    pub forgot_submit: &'static str,
    /// The one answer to every request (no enumeration).
    pub forgot_sent: &'static str,
    pub forgot_no_mail: &'static str,
    pub reset_title: &'static str,
    pub reset_lead: &'static str,
    pub reset_submit: &'static str,
    pub change_title: &'static str,
    pub change_lead: &'static str,
    pub change_submit: &'static str,
    pub new_password_label: &'static str,
    pub confirm_label: &'static str,
    /// `{min}` and `{max}` filled in.
    pub rules_hint: &'static str,
    pub second_factor_kept: &'static str,
    pub msg_mismatch: &'static str,
    pub msg_missing: &'static str,
    pub msg_form_expired: &'static str,
    pub msg_captcha_wrong: &'static str,
    pub msg_throttled: &'static str,
    pub msg_current_missing: &'static str,
    pub msg_current_wrong: &'static str,
    /// `{until}` filled in.
    pub msg_current_locked: &'static str,
    pub link_invalid_title: &'static str,
    pub link_invalid: &'static str,
    pub request_new_link: &'static str,
    pub changed_title: &'static str,
    pub reset_done: &'static str,
    pub change_done: &'static str,
    pub back_to_login: &'static str,
    pub back_to_account: &'static str,
    pub problem_too_short: &'static str,
    pub problem_too_long: &'static str,
    pub problem_upper: &'static str,
    pub problem_lower: &'static str,
    pub problem_digit: &'static str,
    pub problem_symbol: &'static str,
    pub problem_login_name: &'static str,
    pub problem_too_common: &'static str,
    pub help_title: &'static str,
    pub help_lead: &'static str,
    pub help_forgot_account: &'static str,
    pub help_forgot_account_text: &'static str,
    pub help_forgot_password: &'static str,
    pub help_forgot_password_mail: &'static str,
    pub help_forgot_password_no_mail: &'static str,
    pub help_suspended: &'static str,
    /// `{n}` and `{minutes}` filled in.
    pub help_suspended_text: &'static str,
    pub help_new_device: &'static str,
    pub help_new_device_text: &'static str,
    pub help_contact: &'static str,
    pub help_no_contact: &'static str,
    pub help_go_forgot: &'static str,
    pub mail_reset_subject: &'static str,
    /// `{name}`, `{login}`, `{link}`, `{minutes}`, `{ip}`, `{when}` filled in.
    pub mail_reset_body: &'static str,
    pub mail_changed_subject: &'static str,
    /// `{name}`, `{login}`, `{when}`, `{ip}`, `{how}` filled in.
    pub mail_changed_body: &'static str,
    pub mail_how_reset: &'static str,
    pub mail_how_change: &'static str,
    pub mail_footer: &'static str,
    pub mail_suspended_subject: &'static str,
    /// `{name}`, `{login}`, `{when}`, `{ip}`, `{until}`, `{what}` filled in.
    pub mail_suspended_body: &'static str,
    pub mail_suspended_password: &'static str,
    pub mail_suspended_code: &'static str,
    pub mail_bound_subject: &'static str,
    /// `{name}`, `{login}`, `{when}`, `{ip}`, `{method}` filled in.
    pub mail_bound_body: &'static str,
    /// `{support}` filled in.
    pub mail_contact: &'static str,
    pub mail_contact_default: &'static str,
}

pub static PASSWORD_ZH_TW: PasswordTexts = PasswordTexts {
    forgot_title: "忘記密碼",
    forgot_lead: "請輸入您的帳號或留存在系統中的電子郵件地址。重設密碼的連結只會寄到帳號基本資料中的電子郵件地址。",
    forgot_login_label: "帳號或電子郵件",
    forgot_login_hint: "例如 t.wang 或 wang@school.example",
    forgot_submit: "寄送重設連結",
    forgot_sent: "若此帳號存在且已留存電子郵件地址，重設密碼的連結已寄出，30 分鐘內有效。請收信並依信中連結設定新密碼；若數分鐘內沒有收到，請檢查垃圾郵件匣，或洽學校管理者 (AA 帳號) 或客服。",
    forgot_no_mail: "本系統未設定寄信功能，無法以電子郵件重設密碼。請洽貴校學校管理者 (AA 帳號) 持有者或客服為您重設密碼。",
    reset_title: "設定新密碼",
    reset_lead: "請設定新的密碼。設定完成後，此帳號在所有裝置上的登入都會被登出。",
    reset_submit: "設定新密碼",
    change_title: "修改密碼",
    change_lead: "請輸入目前的密碼與新的密碼。修改完成後，此帳號在其他裝置上的登入都會被登出。",
    change_submit: "修改密碼",
    new_password_label: "新密碼",
    confirm_label: "再輸入一次新密碼",
    rules_hint: "至少 {min} 個字元、最多 {max} 個字元；可使用任何文字，建議以數個詞組成的長句。太常見或容易被猜中的密碼不能使用。",
    second_factor_kept: "重設密碼不會解除您的第二道驗證：下次登入仍需輸入 OTP 驗證碼 (或使用自然人憑證)。",
    msg_mismatch: "兩次輸入的新密碼不相同，請重新輸入。",
    msg_missing: "請填寫所有欄位。",
    msg_form_expired: "此頁面已過期，請重新送出。",
    msg_captcha_wrong: "驗證碼錯誤，請重新輸入。",
    msg_throttled: "申請次數過多，請稍後再試。",
    msg_current_missing: "請輸入目前的密碼以確認是您本人，密碼未變更。",
    msg_current_wrong: "目前的密碼錯誤，密碼未變更。連續錯誤將暫停帳號。",
    msg_current_locked: "帳號已暫停使用至 {until}，暫時無法修改密碼。",
    link_invalid_title: "連結已失效",
    link_invalid: "此重設密碼連結無效、已使用過或已過期 (有效時間 30 分鐘；申請新的連結後，舊的連結即失效)。請重新申請。",
    request_new_link: "重新申請重設連結",
    changed_title: "密碼已變更",
    reset_done: "您的密碼已重設，所有裝置上的登入都已登出。請以新密碼重新登入；登入時仍需通過第二道驗證。",
    change_done: "您的密碼已修改，其他裝置上的登入都已登出。",
    back_to_login: "返回登入首頁",
    back_to_account: "返回帳號頁面",
    problem_too_short: "密碼太短：至少需要 {min} 個字元。",
    problem_too_long: "密碼太長：最多 {max} 個字元。",
    problem_upper: "密碼需包含大寫英文字母。",
    problem_lower: "密碼需包含小寫英文字母。",
    problem_digit: "密碼需包含數字。",
    problem_symbol: "密碼需包含符號。",
    problem_login_name: "密碼不可包含帳號名稱。",
    problem_too_common: "密碼太常見或太容易被猜中（例如常用密碼、鍵盤順序、姓名或日期）。請改用幾個不相關的詞組成的長句。",
    help_title: "登入說明",
    help_lead: "登入遇到問題時，請依下列說明處理。",
    help_forgot_account: "忘記帳號",
    help_forgot_account_text: "帳號由貴校學校管理者 (AA 帳號) 建立，通常是您的教職員帳號或電子郵件地址的前段。請洽學校管理者查詢；為保護個人資料，系統不會公開帳號清單。",
    help_forgot_password: "忘記密碼",
    help_forgot_password_mail: "可使用【忘記密碼】功能，重設連結會寄到帳號基本資料中的電子郵件地址；若未留存電子郵件，請洽學校管理者 (AA 帳號) 或客服重設密碼。",
    help_forgot_password_no_mail: "請洽貴校學校管理者 (AA 帳號) 持有者或客服為您重設密碼。",
    help_suspended: "帳號被暫停",
    help_suspended_text: "連續 {n} 次密碼或驗證碼錯誤，帳號會暫停登入 {minutes} 分鐘，時間到後自動恢復；學校管理者或客服可提前解除。",
    help_new_device: "換手機或換卡",
    help_new_device_text: "更換手機後，舊手機上的驗證器 App 無法再產生驗證碼；更換自然人憑證卡片後，舊卡的綁定也會失效。若還能登入，請到【個人資料管理 › 登入設定】重新綁定；若已無法登入，請洽學校管理者或客服重設第二道驗證，再於下次登入時重新綁定。",
    help_contact: "聯絡窗口",
    help_no_contact: "請洽貴校資訊組或學校管理者 (AA 帳號)。",
    help_go_forgot: "前往忘記密碼",
    mail_reset_subject: "門神 Menshen 重設密碼連結",
    mail_reset_body: "{name} 您好：\n\n有人 (希望是您) 於 {when} 從網路位址 {ip} 申請重設帳號 {login} 的密碼。\n請於 {minutes} 分鐘內開啟下列連結設定新密碼，連結只能使用一次：\n\n{link}\n\n若不是您本人申請，請忽略此信，您的密碼不會改變；若一再收到，請通知學校管理者。",
    mail_changed_subject: "您的密碼已變更",
    mail_changed_body: "{name} 您好：\n\n帳號 {login} 的密碼已於 {when} 從網路位址 {ip} {how}，所有其他裝置上的登入都已登出。\n\n若這不是您本人所為，請立即聯絡學校管理者 (AA 帳號) 或客服。",
    mail_how_reset: "經由重設連結變更",
    mail_how_change: "在個人資料管理中修改",
    mail_footer: "此信由系統自動寄出，請勿直接回覆。",
    mail_suspended_subject: "您的帳號已暫停登入",
    mail_suspended_body: "{name} 您好：\n\n帳號 {login} 於 {when} 因{what}連續錯誤，已暫停登入至 {until}（最後一次嘗試來自網路位址 {ip}）。時間到後會自動恢復。\n\n若這些嘗試不是您本人所為，可能有人在猜您的密碼：請在恢復後修改密碼，並通知學校管理者 (AA 帳號)。學校管理者或客服也可提前解除暫停。",
    mail_suspended_password: "密碼",
    mail_suspended_code: "OTP 驗證碼",
    mail_bound_subject: "您的帳號已綁定新的登入方式",
    mail_bound_body: "{name} 您好：\n\n帳號 {login} 於 {when} 從網路位址 {ip} 綁定了登入方式：{method}。此帳號所有裝置上的登入都已登出。\n\n若這不是您本人所為，請立即聯絡學校管理者 (AA 帳號) 或客服。",
    mail_contact: "聯絡窗口：{support}",
    mail_contact_default: "聯絡窗口：貴校資訊組或學校管理者 (AA 帳號)。",
};

pub static PASSWORD_EN: PasswordTexts = PasswordTexts {
    forgot_title: "Forgot password",
    forgot_lead: "Enter your account name or the e-mail address on file. The reset link is only ever sent to the address in your account's details.",
    forgot_login_label: "Account or e-mail",
    forgot_login_hint: "e.g. t.wang or wang@school.example",
    forgot_submit: "Send reset link",
    forgot_sent: "If the account exists and has an e-mail address on file, a link to reset the password has been sent; it works for 30 minutes. If nothing arrives within a few minutes, check your spam folder or ask the school administrator (AA account) or the support desk.",
    forgot_no_mail: "This gateway does not send mail, so passwords cannot be reset by e-mail. Ask your school's administrator (AA account) or the support desk to reset it.",
    reset_title: "Set a new password",
    reset_lead: "Choose a new password. Once it is set, every sign-in of this account on every device ends.",
    reset_submit: "Set new password",
    change_title: "Change password",
    change_lead: "Enter your current password and the new one. Once changed, your sign-ins on other devices end.",
    change_submit: "Change password",
    new_password_label: "New password",
    confirm_label: "New password again",
    rules_hint: "{min} to {max} characters; any characters may be used, and a long phrase of several words is best. Common or easily guessed passwords are refused.",
    second_factor_kept: "A reset keeps your second factor: the next sign-in still asks for the OTP code (or the citizen certificate).",
    msg_mismatch: "The two new passwords differ; please type them again.",
    msg_missing: "Please fill in every field.",
    msg_form_expired: "This page expired; please send it again.",
    msg_captcha_wrong: "The verification code was wrong; please try again.",
    msg_throttled: "Too many requests; please try again later.",
    msg_current_missing: "Enter your current password to confirm it is you; nothing was changed.",
    msg_current_wrong: "The current password is wrong; nothing was changed. Repeated mistakes suspend the account.",
    msg_current_locked: "The account is suspended until {until}; the password cannot be changed now.",
    link_invalid_title: "Link no longer valid",
    link_invalid: "This reset link is invalid, already used or expired (links work for 30 minutes, and a newer request replaces older links). Please request a new one.",
    request_new_link: "Request a new link",
    changed_title: "Password changed",
    reset_done: "Your password has been reset and every sign-in on every device has ended. Sign in with the new password; the second factor is still asked for.",
    change_done: "Your password has been changed and your sign-ins on other devices have ended.",
    back_to_login: "Back to sign-in",
    back_to_account: "Back to my account",
    problem_too_short: "Too short: at least {min} characters.",
    problem_too_long: "Too long: at most {max} characters.",
    problem_upper: "The password needs an uppercase letter.",
    problem_lower: "The password needs a lowercase letter.",
    problem_digit: "The password needs a digit.",
    problem_symbol: "The password needs a symbol.",
    problem_login_name: "The password must not contain the account name.",
    problem_too_common: "This password is too common or too easy to guess (a well-known password, a keyboard run, a name or a date). Use a long phrase of a few unrelated words.",
    help_title: "Sign-in help",
    help_lead: "If you cannot sign in, this is what to do.",
    help_forgot_account: "Forgot your account name",
    help_forgot_account_text: "Accounts are created by your school's administrator (AA account); the name is usually your staff account or the first part of your e-mail address. Ask the administrator: to protect personal data, the gateway never lists accounts.",
    help_forgot_password: "Forgot your password",
    help_forgot_password_mail: "Use Forgot password: the reset link goes to the e-mail address in your account's details. Without an address on file, ask the school administrator (AA account) or the support desk to reset it.",
    help_forgot_password_no_mail: "Ask your school's administrator (AA account) or the support desk to reset it.",
    help_suspended: "Account suspended",
    help_suspended_text: "After {n} wrong passwords or codes in a row the account is suspended for {minutes} minutes and then opens again by itself; the school administrator or the support desk can lift it earlier.",
    help_new_device: "New phone or new card",
    help_new_device_text: "After changing phones the authenticator app on the old one no longer gives codes; a new citizen certificate card makes the old card's binding useless. If you can still sign in, bind again under My account › Sign-in settings; if you cannot, ask the administrator or the support desk to reset the second factor, then bind the new one at the next sign-in.",
    help_contact: "Whom to contact",
    help_no_contact: "Ask your school's IT staff or administrator (AA account).",
    help_go_forgot: "Go to Forgot password",
    mail_reset_subject: "Menshen password reset link",
    mail_reset_body: "Hello {name},\n\nSomeone (hopefully you) asked at {when} from address {ip} to reset the password of account {login}.\nOpen this link within {minutes} minutes to choose a new password; it works once:\n\n{link}\n\nIf it was not you, ignore this mail: your password stays as it is. If these keep coming, tell the school administrator.",
    mail_changed_subject: "Your password was changed",
    mail_changed_body: "Hello {name},\n\nThe password of account {login} was {how} at {when} from address {ip}; every sign-in on other devices has ended.\n\nIf this was not you, contact the school administrator (AA account) or the support desk at once.",
    mail_how_reset: "reset through a mailed link",
    mail_how_change: "changed under My account",
    mail_footer: "This mail was sent automatically; please do not reply.",
    mail_suspended_subject: "Your account is suspended",
    mail_suspended_body: "Hello {name},\n\nAfter repeated wrong {what}, account {login} was suspended at {when} until {until} (the last try came from address {ip}). It opens again by itself.\n\nIf these tries were not yours, someone may be guessing your password: change it once the suspension ends and tell the school administrator (AA account). The administrator or the support desk can also lift the suspension earlier.",
    mail_suspended_password: "passwords",
    mail_suspended_code: "OTP codes",
    mail_bound_subject: "A new sign-in method was set up for your account",
    mail_bound_body: "Hello {name},\n\nAt {when}, from address {ip}, account {login} was set up with the sign-in method: {method}. Every sign-in of the account on every device has ended.\n\nIf this was not you, contact the school administrator (AA account) or the support desk at once.",
    mail_contact: "Contact: {support}",
    mail_contact_default: "Contact: your school's IT staff or administrator (AA account).",
};

impl Lang {
    /// The password pages' and mails' sentences in this language.
    pub fn password_texts(self) -> &'static PasswordTexts {
        match self {
            Lang::ZhTw => &PASSWORD_ZH_TW,
            Lang::En => &PASSWORD_EN,
        }
    }
}

/// One rule a new password broke, in words (with the policy's numbers).
pub fn password_rule_text(lang: Lang, problem: PasswordProblem, policy: &PasswordPolicy) -> String {
    let p = lang.password_texts();
    let text = match problem {
        PasswordProblem::TooShort => p.problem_too_short,
        PasswordProblem::TooLong => p.problem_too_long,
        PasswordProblem::NeedsUpper => p.problem_upper,
        PasswordProblem::NeedsLower => p.problem_lower,
        PasswordProblem::NeedsDigit => p.problem_digit,
        PasswordProblem::NeedsSymbol => p.problem_symbol,
        PasswordProblem::ContainsLoginName => p.problem_login_name,
        PasswordProblem::TooCommon => p.problem_too_common,
    };
    fill_lengths(text, policy)
}

fn fill_lengths(text: &str, policy: &PasswordPolicy) -> String {
    text.replace("{min}", &policy.min_length.to_string())
        .replace("{max}", &policy.max_length.to_string())
}

/// The captcha of the forgot form (the login form's picture and 更換圖片).
#[derive(Debug, Clone, Copy)]
pub struct ForgotCaptcha<'a> {
    pub id: &'a str,
    pub image_src: &'a str,
    pub refresh_href: &'a str,
}

/// `GET/POST /.menshen/password/forgot`.
#[derive(Debug, Clone)]
pub struct ForgotPage<'a> {
    pub lang: Lang,
    pub site_name: &'a str,
    pub csrf: &'a str,
    /// What was typed, refilled after a mistake (never after the request was taken).
    pub login: &'a str,
    /// Whether `[mail]` is configured; without it the page says whom to contact.
    pub mail: bool,
    /// The request was taken: the page shows the one answer and no form.
    pub sent: bool,
    pub error: Option<&'a str>,
    pub captcha: Option<ForgotCaptcha<'a>>,
    pub support: Option<&'a str>,
}

#[derive(askama::Template)]
#[template(path = "password_forgot.html")]
struct ForgotTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    p: &'static PasswordTexts,
    subtitle: &'a str,
    page: &'a ForgotPage<'a>,
    message: Option<MessageView>,
}

pub fn render_forgot(page: &ForgotPage) -> String {
    let t = page.lang.texts();
    let p = page.lang.password_texts();
    let message = if page.sent {
        Some(MessageView::success(p.forgot_sent))
    } else if !page.mail {
        Some(MessageView::info(p.forgot_no_mail))
    } else {
        page.error.map(MessageView::error)
    };
    render_or_fallback(&ForgotTemplate {
        html_lang: page.lang.html_lang(),
        t,
        p,
        subtitle: subtitle(page.site_name, t),
        page,
        message,
    })
}

/// Which password form.
#[derive(Debug, Clone, Copy)]
pub enum PasswordFormKind<'a> {
    /// The mailed link's form; the token travels in a hidden field.
    Reset { token: &'a str },
    /// 修改密碼 from the profile: proof of presence first (the current password).
    Change { reauth: ReauthField },
}

/// `GET/POST /.menshen/password/reset` and `/.menshen/password/change`.
#[derive(Debug, Clone)]
pub struct PasswordFormPage<'a> {
    pub lang: Lang,
    pub site_name: &'a str,
    pub csrf: &'a str,
    pub kind: PasswordFormKind<'a>,
    pub policy: &'a PasswordPolicy,
    /// What went wrong with the last try, one sentence each.
    pub errors: &'a [String],
}

#[derive(askama::Template)]
#[template(path = "password_form.html")]
struct PasswordFormTemplate<'a> {
    html_lang: &'static str,
    p: &'static PasswordTexts,
    subtitle: &'a str,
    page: &'a PasswordFormPage<'a>,
    action: &'static str,
    title: &'static str,
    lead: &'static str,
    submit: &'static str,
    token: &'a str,
    reauth: Option<ReauthView>,
    reauth_id: &'static str,
    rules: String,
    min_length: usize,
    max_length: usize,
}

pub fn render_password_form(page: &PasswordFormPage) -> String {
    let t = page.lang.texts();
    let p = page.lang.password_texts();
    let (action, title, lead, submit, token, reauth) = match page.kind {
        PasswordFormKind::Reset { token } => (
            "/.menshen/password/reset",
            p.reset_title,
            p.reset_lead,
            p.reset_submit,
            token,
            None,
        ),
        PasswordFormKind::Change { reauth } => (
            "/.menshen/password/change",
            p.change_title,
            p.change_lead,
            p.change_submit,
            "",
            reauth.view(t),
        ),
    };
    render_or_fallback(&PasswordFormTemplate {
        html_lang: page.lang.html_lang(),
        p,
        subtitle: subtitle(page.site_name, t),
        page,
        action,
        title,
        lead,
        submit,
        token,
        reauth,
        reauth_id: "current-password",
        rules: fill_lengths(p.rules_hint, page.policy),
        min_length: page.policy.min_length,
        max_length: page.policy.max_length,
    })
}

/// The result pages of these flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordNotice {
    /// The link was malformed, used, replaced or expired.
    LinkInvalid,
    /// The password was reset through a link: every session ended.
    ResetDone,
    /// The password was changed from the profile.
    ChangeDone,
}

#[derive(Debug, Clone, Copy)]
pub struct NoticePage<'a> {
    pub lang: Lang,
    pub site_name: &'a str,
    pub notice: PasswordNotice,
}

#[derive(askama::Template)]
#[template(path = "password_notice.html")]
struct NoticeTemplate<'a> {
    html_lang: &'static str,
    p: &'static PasswordTexts,
    subtitle: &'a str,
    title: &'static str,
    message: MessageView,
    notice: PasswordNotice,
}

pub fn render_password_notice(page: &NoticePage) -> String {
    let t = page.lang.texts();
    let p = page.lang.password_texts();
    let (title, message) = match page.notice {
        PasswordNotice::LinkInvalid => (p.link_invalid_title, MessageView::error(p.link_invalid)),
        PasswordNotice::ResetDone => (p.changed_title, MessageView::success(p.reset_done)),
        PasswordNotice::ChangeDone => (p.changed_title, MessageView::success(p.change_done)),
    };
    render_or_fallback(&NoticeTemplate {
        html_lang: page.lang.html_lang(),
        p,
        subtitle: subtitle(page.site_name, t),
        title,
        message,
        notice: page.notice,
    })
}

/// `GET /.menshen/help`.
#[derive(Debug, Clone, Copy)]
pub struct HelpPage<'a> {
    pub lang: Lang,
    pub site_name: &'a str,
    /// `[mail]` is configured: 忘記密碼 points at the forgot form.
    pub mail: bool,
    /// `[login] support`.
    pub support: Option<&'a str>,
    /// `[login] help`.
    pub help: Option<&'a str>,
    pub lockout: crate::LockoutRule,
}

#[derive(askama::Template)]
#[template(path = "help.html")]
struct HelpTemplate<'a> {
    html_lang: &'static str,
    p: &'static PasswordTexts,
    subtitle: &'a str,
    page: &'a HelpPage<'a>,
    suspended: String,
}

pub fn render_help(page: &HelpPage) -> String {
    let t = page.lang.texts();
    let p = page.lang.password_texts();
    render_or_fallback(&HelpTemplate {
        html_lang: page.lang.html_lang(),
        p,
        subtitle: subtitle(page.site_name, t),
        page,
        suspended: page.lockout.fill(p.help_suspended_text),
    })
}

/// A mail's content: subject, plain text, and the same as HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailText {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(askama::Template)]
#[template(path = "mail.html")]
struct MailTemplate<'a> {
    html_lang: &'static str,
    subject: &'a str,
    /// Paragraphs before the link, then after it.
    before: Vec<String>,
    after: Vec<String>,
    link: &'a str,
    footer: &'static str,
}

fn mail(lang: Lang, subject: &str, body: &str, link: &str) -> MailText {
    let footer = lang.password_texts().mail_footer;
    // Paragraphs of the HTML part; the link's own paragraph becomes a button and the link.
    let paragraphs: Vec<&str> = body.split("\n\n").collect();
    let at = paragraphs
        .iter()
        .position(|para| !link.is_empty() && para.trim() == link)
        .unwrap_or(paragraphs.len());
    let before = paragraphs[..at].iter().map(|s| (*s).to_owned()).collect();
    let after = paragraphs
        .get(at + 1..)
        .unwrap_or_default()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let html = render_or_fallback(&MailTemplate {
        html_lang: lang.html_lang(),
        subject,
        before,
        after,
        link,
        footer,
    });
    MailText {
        subject: subject.to_owned(),
        text: format!("{body}\n\n-- \n{footer}\n"),
        html,
    }
}

/// Who a mail is about, and from where the request came.
#[derive(Debug, Clone, Copy)]
pub struct MailContext<'a> {
    pub lang: Lang,
    pub display_name: &'a str,
    pub login_name: &'a str,
    /// "2026-12-04 14:05" (Taiwan time).
    pub when: &'a str,
    pub client_ip: &'a str,
}

impl MailContext<'_> {
    fn fill(&self, text: &str) -> String {
        let name = if self.display_name.is_empty() {
            self.login_name
        } else {
            self.display_name
        };
        text.replace("{name}", name)
            .replace("{login}", self.login_name)
            .replace("{when}", self.when)
            .replace(
                "{ip}",
                if self.client_ip.is_empty() {
                    "?"
                } else {
                    self.client_ip
                },
            )
    }
}

/// The mail with the reset link.
pub fn reset_mail(cx: &MailContext, link: &str, minutes: u64) -> MailText {
    let p = cx.lang.password_texts();
    let body = cx
        .fill(p.mail_reset_body)
        .replace("{minutes}", &minutes.to_string())
        .replace("{link}", link);
    mail(cx.lang, p.mail_reset_subject, &body, link)
}

/// The notice 您的密碼已變更. `by_reset`: through a mailed link (else from the profile).
pub fn changed_mail(cx: &MailContext, by_reset: bool) -> MailText {
    let p = cx.lang.password_texts();
    let how = if by_reset {
        p.mail_how_reset
    } else {
        p.mail_how_change
    };
    let body = cx.fill(p.mail_changed_body).replace("{how}", how);
    mail(cx.lang, p.mail_changed_subject, &body, "")
}

/// A notice about the account (with `[mail]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeMail<'a> {
    /// Suspended after wrong passwords (`code: false`) or OTP codes, until this time.
    Suspended { until: &'a str, code: bool },
    /// A second factor was bound or replaced; `method` in words (e.g. "OTP 驗證").
    FactorBound { method: &'a str },
}

impl NoticeMail<'_> {
    /// The metric and activity label of the notice.
    pub fn kind(&self) -> &'static str {
        match self {
            NoticeMail::Suspended { .. } => "suspended",
            NoticeMail::FactorBound { .. } => "factor_bound",
        }
    }
}

/// The mail for `notice`; `support` is `[login] support`, the contact it names.
pub fn notice_mail(cx: &MailContext, notice: &NoticeMail, support: Option<&str>) -> MailText {
    let p = cx.lang.password_texts();
    let (subject, body) = match notice {
        NoticeMail::Suspended { until, code } => (
            p.mail_suspended_subject,
            cx.fill(p.mail_suspended_body)
                .replace("{until}", until)
                .replace(
                    "{what}",
                    if *code {
                        p.mail_suspended_code
                    } else {
                        p.mail_suspended_password
                    },
                ),
        ),
        NoticeMail::FactorBound { method } => (
            p.mail_bound_subject,
            cx.fill(p.mail_bound_body).replace("{method}", method),
        ),
    };
    let contact = match support {
        Some(s) => p.mail_contact.replace("{support}", s),
        None => p.mail_contact_default.to_owned(),
    };
    mail(cx.lang, subject, &format!("{body}\n\n{contact}"), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_what_when_from_where_and_whom_to_call() {
        let m = notice_mail(
            &cx(Lang::ZhTw),
            &NoticeMail::Suspended {
                until: "14:20",
                code: false,
            },
            Some("教務處 分機 123"),
        );
        assert_eq!(m.subject, "您的帳號已暫停登入");
        for part in [
            "14:20",
            "192.0.2.7",
            "2026-12-04 14:05",
            "密碼連續錯誤",
            "教務處 分機 123",
            "提前解除",
        ] {
            assert!(m.text.contains(part), "{part}: {}", m.text);
        }
        let m = notice_mail(
            &cx(Lang::En),
            &NoticeMail::FactorBound { method: "OTP" },
            None,
        );
        assert!(m.text.contains("sign-in method: OTP") && m.text.contains("administrator"));
        assert_eq!(
            NoticeMail::FactorBound { method: "x" }.kind(),
            "factor_bound"
        );
    }

    fn cx(lang: Lang) -> MailContext<'static> {
        MailContext {
            lang,
            display_name: "王小明",
            login_name: "t.wang",
            when: "2026-12-04 14:05",
            client_ip: "192.0.2.7",
        }
    }

    #[test]
    fn the_reset_mail_carries_the_link_in_both_parts() {
        let link = "https://login.school.example/.menshen/password/reset?token=abc";
        let m = reset_mail(&cx(Lang::ZhTw), link, 30);
        assert_eq!(m.subject, "門神 Menshen 重設密碼連結");
        assert!(m.text.contains(link) && m.text.contains("王小明") && m.text.contains("30 分鐘"));
        assert!(m.text.contains("192.0.2.7"));
        assert!(m.html.contains(&format!("href=\"{link}\"")), "{}", m.html);
        assert!(m.html.starts_with("<!DOCTYPE html>"));
        let en = reset_mail(&cx(Lang::En), link, 30);
        assert!(en.text.contains("within 30 minutes"));
    }

    #[test]
    fn mail_html_escapes_what_came_from_the_database() {
        let mut c = cx(Lang::ZhTw);
        c.display_name = "<script>x</script>";
        let m = changed_mail(&c, true);
        assert_eq!(m.subject, "您的密碼已變更");
        assert!(!m.html.contains("<script>"));
        assert!(m.html.contains("&lt;script&gt;") || m.html.contains("&#60;script&#62;"));
        assert!(m.text.contains("經由重設連結變更"));
        assert!(
            changed_mail(&cx(Lang::ZhTw), false)
                .text
                .contains("在個人資料管理中修改")
        );
    }

    #[test]
    fn forgot_page_says_the_same_thing_and_explains_without_mail() {
        let base = ForgotPage {
            lang: Lang::ZhTw,
            site_name: "",
            csrf: "c",
            login: "t.wang",
            mail: true,
            sent: false,
            error: None,
            captcha: None,
            support: Some("教務處 分機 123"),
        };
        let form = render_forgot(&base);
        assert!(form.contains("name=\"login\"") && form.contains("value=\"t.wang\""));
        assert!(form.contains("name=\"csrf\" value=\"c\""));
        let sent = render_forgot(&ForgotPage {
            sent: true,
            ..base.clone()
        });
        assert!(sent.contains(PASSWORD_ZH_TW.forgot_sent));
        assert!(!sent.contains("name=\"login\""));
        let off = render_forgot(&ForgotPage {
            mail: false,
            ..base
        });
        assert!(off.contains(PASSWORD_ZH_TW.forgot_no_mail));
        assert!(off.contains("教務處 分機 123"));
        assert!(!off.contains("name=\"login\""));
    }

    #[test]
    fn password_forms_name_their_fields() {
        let policy = PasswordPolicy::default();
        let reset = render_password_form(&PasswordFormPage {
            lang: Lang::ZhTw,
            site_name: "",
            csrf: "c",
            kind: PasswordFormKind::Reset { token: "tok" },
            policy: &policy,
            errors: &["太短".to_owned()],
        });
        for field in ["token", "password", "password_confirm", "csrf"] {
            assert!(reset.contains(&format!("name=\"{field}\"")), "{field}");
        }
        assert!(reset.contains("autocomplete=\"new-password\""));
        assert!(reset.contains("太短"));
        assert!(!reset.contains("current_password"));
        let change = render_password_form(&PasswordFormPage {
            lang: Lang::En,
            site_name: "",
            csrf: "c",
            kind: PasswordFormKind::Change {
                reauth: ReauthField::Password,
            },
            policy: &policy,
            errors: &[],
        });
        assert!(change.contains("name=\"current_password\""));
        assert!(change.contains("action=\"/.menshen/password/change\""));
    }

    #[test]
    fn rule_texts_carry_the_numbers() {
        let policy = PasswordPolicy::default();
        let short = password_rule_text(Lang::ZhTw, PasswordProblem::TooShort, &policy);
        assert!(short.contains(&policy.min_length.to_string()));
        let long = password_rule_text(Lang::En, PasswordProblem::TooLong, &policy);
        assert!(long.contains(&policy.max_length.to_string()));
    }

    #[test]
    fn help_has_the_four_sections_and_the_contact() {
        let html = render_help(&HelpPage {
            lang: Lang::ZhTw,
            site_name: "",
            mail: true,
            support: Some("客服 02-1234"),
            help: Some("上班時間 8:00-17:00"),
            lockout: crate::LockoutRule::default(),
        });
        for id in [
            "forgot-account",
            "forgot-password",
            "suspended",
            "new-device",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(html.contains("客服 02-1234") && html.contains("上班時間 8:00-17:00"));
        assert!(html.contains("href=\"/.menshen/password/forgot\""));
        assert!(html.contains("連續 3 次"));
        let no_mail = render_help(&HelpPage {
            lang: Lang::ZhTw,
            site_name: "",
            mail: false,
            support: None,
            help: None,
            lockout: crate::LockoutRule::default(),
        });
        assert!(!no_mail.contains("/.menshen/password/forgot"));
    }
}
