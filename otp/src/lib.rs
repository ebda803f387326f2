//! The second factor's building blocks, kept free of I/O so they can be tested alone.
//!
//! # Layout
//!
//! - [`totp`]: the shared secret and RFC 6238 codes (SHA-1, 6 digits, 30 s), the form Google
//!   Authenticator and every other authenticator app understands.
//! - [`qr`]: QR codes as SVG rendered in-process, so the secret in an `otpauth://` URI never
//!   leaves the gateway on its way to the user's screen.
//! - [`sealed`]: authenticated encryption at rest for the secrets, with a keyring so the key can
//!   be rotated without a flag day.
//!
//! Time is always passed in (`unix_secs`), never read here, so callers and tests control it;
//! remembering which time step was already used (each code is accepted once only) is the
//! caller's job, because it needs shared storage.

pub mod qr;
pub mod sealed;
pub mod totp;
