//! MOI's `error_code`: `{interface ID}-{system code}` such as
//! `SP-API-ATH-02-SPTKTID_TXNLOG_NF`, sometimes with a `:explanation` suffix, sometimes a
//! bare number. Only the trailing system code decides what it means.

use serde_json::Value;

/// What an error code means for a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0`: done.
    Success,
    /// Not finished yet: ask again later.
    Pending,
    /// The person cancelled, or the app failed to sign.
    Declined,
    /// The ticket (or a nonce inside the app) expired.
    Expired,
    /// The ticket was already redeemed.
    Used,
    /// MOI does not know the ticket.
    UnknownTicket,
    /// No registered user has this ID.
    UnknownId,
    /// The ID has no device that can receive a push (none bound, alias unknown, or a push
    /// token gone stale); a QR code may still work.
    NoDevice,
    /// MOI refused the request itself: a mistake or misconfiguration on our side (checksum,
    /// service ID, ID format, lengths, a reused transaction ID).
    Rejected,
    /// Maintenance or trouble on MOI's side (`DB_*`, `PS_*`, `UNDEFINED`).
    Unavailable,
    /// Anything else, final.
    Other,
}

/// An error code as MOI sent it, with its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    /// Exactly as received (a number is written in decimal): `idp_checksum` covers it.
    pub raw: String,
    /// The trailing system code, e.g. `SPTKTID_TXNLOG_NF`.
    pub system: String,
    pub kind: Kind,
}

impl ErrorCode {
    /// Reads the `error_code` value: a string, or a bare number in some deployments.
    pub fn from_json(value: Option<&Value>) -> Option<ErrorCode> {
        let raw = match value? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(ErrorCode::parse(&raw))
    }

    pub fn parse(raw: &str) -> ErrorCode {
        let code = raw.split(':').next().unwrap_or("").trim();
        // System codes use '_', interface IDs '-': the system code follows the last '-'.
        let system = code.rsplit('-').next().unwrap_or(code).to_owned();
        ErrorCode {
            raw: raw.to_owned(),
            kind: kind(&system),
            system,
        }
    }

    pub fn is_success(&self) -> bool {
        self.kind == Kind::Success
    }
}

fn kind(system: &str) -> Kind {
    match system {
        "0" => Kind::Success,
        // 20002 and 20003 are treated as pending by the zkmopro samples only; their origin
        // is unknown. Pending is the harmless reading: polling ends at the deadline anyway.
        "SPTKTID_TXNLOG_NF" | "20002" | "20003" => Kind::Pending,
        // 10002, 32003, 32006: the iOS app's user-facing cancel and timeout numbers.
        "APP_USER_CANCEL" | "APP_SIGN_FAILURE" | "APP_DECODE_FAIL" | "APP_DATA_NULL" | "10002"
        | "32003" | "32006" => Kind::Declined,
        "SPTKT_OVD" | "NFCNONCE_EXPIRED" | "OTP_EXPIRED" => Kind::Expired,
        "SPTKTID_SPTKT_RDM" => Kind::Used,
        "SPTKTID_SPTKT_NF" => Kind::UnknownTicket,
        "IDNUM_USERPROF_NF" => Kind::UnknownId,
        "IDNUM_DEVPROF_NF" | "DEV_DESC_MISMATCH" | "PS_FCM_NOT_FOUND" => Kind::NoDevice,
        "INV_SP_CHECKSUM" | "SPSVCID_NF" | "PM_IDN_FT_ERR" | "SPTKT_PLD_FT_ERR"
        | "SPTKT_DIG_FT_ERR" | "TGT_INV" | "SIGNDATA_LEN_LIMIT" | "BATSIGN_CNT_LIMIT"
        | "TXNLOG_INS_ERR" | "SPTKT_TIME_ORV" | "SPTKT_TIME_FT_ERR" => Kind::Rejected,
        "UNDEFINED" => Kind::Unavailable,
        s if s.starts_with("DB_") || s.starts_with("PS_") => Kind::Unavailable,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn system_codes_decide() {
        let cases = [
            ("0", Kind::Success),
            ("SP-API-ATH-02-SPTKTID_TXNLOG_NF", Kind::Pending),
            (
                "SP-API-ATH-02-SPTKTID_TXNLOG_NF:認證/簽章尚未完成",
                Kind::Pending,
            ),
            ("20002", Kind::Pending),
            ("SP-API-ATH-02-APP_USER_CANCEL", Kind::Declined),
            ("SP-API-ATH-02-APP_SIGN_FAILURE", Kind::Declined),
            ("SP-API-ATH-02-SPTKT_OVD", Kind::Expired),
            ("SP-API-ATH-02-SPTKTID_SPTKT_RDM", Kind::Used),
            ("SP-API-ATH-02-SPTKTID_SPTKT_NF", Kind::UnknownTicket),
            ("SP-API-ATH-03-IDNUM_USERPROF_NF", Kind::UnknownId),
            ("SP-API-ATH-03-IDNUM_DEVPROF_NF", Kind::NoDevice),
            ("SP-API-ATH-03-PS_FCM_NOT_FOUND", Kind::NoDevice),
            ("SP-API-ATH-01-INV_SP_CHECKSUM", Kind::Rejected),
            ("SP-API-ATH-01-TXNLOG_INS_ERR", Kind::Rejected),
            ("SP-API-ATH-01-SPTKT_TIME_ORV", Kind::Rejected),
            ("SP-API-ATH-01-DB_CONN_ERR", Kind::Unavailable),
            ("SP-API-ATH-01-PS_SEND_ERR", Kind::Unavailable),
            ("SP-API-ATH-01-UNDEFINED", Kind::Unavailable),
            ("SP-API-ATH-02-PM_INV_SG", Kind::Other),
            ("", Kind::Other),
        ];
        for (raw, want) in cases {
            let code = ErrorCode::parse(raw);
            assert_eq!(code.kind, want, "{raw}");
            assert_eq!(code.raw, raw);
        }
        assert_eq!(
            ErrorCode::parse("SP-API-ATH-02-SPTKT_OVD:expired").system,
            "SPTKT_OVD"
        );
    }

    #[test]
    fn numbers_and_strings_are_read() {
        let zero = ErrorCode::from_json(Some(&json!(0))).unwrap();
        assert!(zero.is_success());
        assert_eq!(zero.raw, "0");
        assert!(
            ErrorCode::from_json(Some(&json!("0")))
                .unwrap()
                .is_success()
        );
        assert_eq!(ErrorCode::from_json(Some(&json!(null))), None);
        assert_eq!(ErrorCode::from_json(None), None);
    }
}
