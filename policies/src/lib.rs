//! Pure decision logic for Menshen: path canonicalisation, access rules, safe return targets,
//! password rules and login-name canonicalisation. No I/O and no async, so every rule the
//! gateway enforces can be tested exhaustively here.

pub mod access;
pub mod factors;
pub mod lockout;
pub mod login_name;
pub mod password;
pub mod path;
pub mod redirect;

pub use login_name::canonical_login_name;
