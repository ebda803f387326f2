//! Pure decision logic for Menshen: path canonicalisation, access rules, safe return targets,
//! password rules, login-name canonicalisation, and which request headers a client may not
//! set. No I/O and no async, so every rule the gateway enforces can be tested exhaustively
//! here.

pub mod access;
pub mod factors;
pub mod headers;
pub mod lockout;
pub mod login_name;
pub mod national_id;
pub mod password;
pub mod path;
pub mod redirect;

pub use login_name::canonical_login_name;
