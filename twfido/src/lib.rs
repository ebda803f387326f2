//! Client of the Ministry of the Interior's TW FidO SP API (行動自然人憑證): the school's
//! gateway asks MOI for a ticket, the person approves on the phone, the gateway polls for the
//! signed result. No Pingora types: the gateway wraps this.
//!
//! # Layout
//!
//! - [`checksum`]: `sp_checksum` / `idp_checksum` (SHA-256 hex sealed with AES-256-GCM).
//! - [`ticket`]: decoding `sp_ticket`.
//! - [`codes`]: what MOI's `error_code` values mean.
//! - [`challenge`]: the fresh data the phone signs.
//! - [`client`]: the four calls (ATH-01 QR, ATH-03 push, ATH-02 result, LF-01 device
//!   status) and the polling driver, with timeouts and a bound on requests in flight.
//!
//! Protocol points the public sources disagree on are handled tolerantly and noted where
//! they are handled: the key alphabet, `error_code` as a number, the flat answer shape,
//! `time_limit` as integer or text, `expiration_time` formats, and the codes 20002/20003.

pub mod challenge;
pub mod checksum;
pub mod client;
pub mod codes;
pub mod ticket;

pub use challenge::Challenge;
pub use checksum::SpKey;
pub use client::{
    Client, DeviceOutcome, Error, ResultOutcome, Settings, Signed, TicketOutcome, TimeLimitFormat,
};
pub use codes::{ErrorCode, Kind};
pub use ticket::Ticket;
