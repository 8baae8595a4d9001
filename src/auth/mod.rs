//! Logging in and staying logged in: PKCE, the loopback redirect, the OAuth token endpoint, and the
//! stored token set with its refresh.

pub mod oauth;
pub mod pkce;
pub mod redirect;
pub mod tokens;

pub use oauth::{OAuthClient, OAuthError};
pub use tokens::{AuthError, Session, TokenFile, TokenSet};
