//! Which second factors an account must or may bind, and where a correct password leads.
//!
//! The registry manual's rules: an account with neither OTP nor a certificate is forced to
//! bind one; school administrator (AA) accounts may bind OTP only; an account that has a
//! second factor never reaches a binding page on the strength of a password alone.

/// What follows a correct password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPassword {
    /// OTP is bound: ask for the code.
    AskOtp,
    /// Nothing usable is bound: the session may reach only the binding pages.
    MustBind,
    /// Only a certificate is bound: the password alone cannot continue; use the card.
    UseCertificate,
}

pub fn after_password(is_aa: bool, otp_bound: bool, certificate_bound: bool) -> AfterPassword {
    match (otp_bound, certificate_bound && may_bind_certificate(is_aa)) {
        (true, _) => AfterPassword::AskOtp,
        (false, true) => AfterPassword::UseCertificate,
        (false, false) => AfterPassword::MustBind,
    }
}

/// AA accounts bind OTP only, never a certificate.
pub fn may_bind_certificate(is_aa: bool) -> bool {
    !is_aa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_leads_where_the_manual_says() {
        assert_eq!(after_password(false, true, false), AfterPassword::AskOtp);
        assert_eq!(after_password(false, true, true), AfterPassword::AskOtp);
        assert_eq!(
            after_password(false, false, true),
            AfterPassword::UseCertificate
        );
        assert_eq!(after_password(false, false, false), AfterPassword::MustBind);
        assert_eq!(after_password(true, false, false), AfterPassword::MustBind);
        assert_eq!(after_password(true, true, false), AfterPassword::AskOtp);
        // A certificate on an AA account (bound before a role change) does not count.
        assert_eq!(after_password(true, false, true), AfterPassword::MustBind);
    }

    #[test]
    fn aa_accounts_never_bind_certificates() {
        assert!(!may_bind_certificate(true));
        assert!(may_bind_certificate(false));
    }
}
