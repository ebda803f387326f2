//! The field on forms that change a sign-in method (OTP re-bind, card binding, linking or
//! unlinking an external account) asking for proof that the person is there: the current
//! password, or for accounts without a usable password a fresh OTP code. A session cookie alone
//! (stolen, or left open on a shared computer) must not be enough to replace a factor.

use crate::texts::Texts;

/// Form field carrying the current password.
pub const PASSWORD_FIELD: &str = "current_password";
/// Form field carrying a fresh code from the bound authenticator app.
pub const CODE_FIELD: &str = "current_code";

/// What a change form asks for (decided by the gateway's `reauth` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReauthField {
    /// Nothing: the forced first binding right after the password was given.
    None,
    Password,
    OtpCode,
    /// The account has nothing it can prove itself with here: the support desk resets it.
    Unavailable,
}

/// The field in words and attributes, for the templates.
pub(crate) struct ReauthView {
    /// The input's name; empty for [`ReauthField::Unavailable`] (a note, no input).
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) hint: &'static str,
    pub(crate) input_type: &'static str,
    pub(crate) autocomplete: &'static str,
    pub(crate) inputmode: &'static str,
}

impl ReauthField {
    pub(crate) fn view(self, t: &'static Texts) -> Option<ReauthView> {
        match self {
            ReauthField::None => None,
            ReauthField::Password => Some(ReauthView {
                name: PASSWORD_FIELD,
                label: t.reauth_password_label,
                hint: t.reauth_hint,
                input_type: "password",
                autocomplete: "current-password",
                inputmode: "text",
            }),
            ReauthField::OtpCode => Some(ReauthView {
                name: CODE_FIELD,
                label: t.reauth_code_label,
                hint: t.reauth_hint,
                input_type: "text",
                autocomplete: "one-time-code",
                inputmode: "numeric",
            }),
            ReauthField::Unavailable => Some(ReauthView {
                name: "",
                label: "",
                hint: t.msg_reauth_unavailable,
                input_type: "text",
                autocomplete: "off",
                inputmode: "text",
            }),
        }
    }
}
