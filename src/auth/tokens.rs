//! The stored token set and the session that keeps it fresh.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{OAuthClient, OAuthError};

/// An access token, the refresh token that renews it, and when the access token expires.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl TokenSet {
    pub fn new(access_token: String, refresh_token: String, lifetime: Duration) -> TokenSet {
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        TokenSet {
            access_token,
            refresh_token,
            expires_at: now_secs().saturating_add(lifetime),
        }
    }

    /// When the login itself ends: `None` when it is renewed in the background (a refresh token
    /// is kept), else when the access token expires (AniList's year-long tokens), in Unix seconds.
    pub fn login_ends_at(&self) -> Option<i64> {
        self.refresh_token.is_empty().then_some(self.expires_at)
    }

    /// Seconds until the access token expires (negative once it has).
    pub fn remaining(&self) -> i64 {
        self.expires_at - now_secs()
    }
}

pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The private file one service's tokens live in.
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    pub fn new(path: PathBuf) -> TokenFile {
        TokenFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored tokens; `None` when nobody has logged in. A file that cannot be read as tokens is
    /// moved aside (kept for inspection) and reported once as [`AuthError::Damaged`].
    pub fn load(&self) -> Result<Option<TokenSet>, AuthError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice::<TokenSet>(&bytes) {
                Ok(tokens) if !tokens.access_token.is_empty() => Ok(Some(tokens)),
                _ => {
                    let copy = crate::paths::set_aside(&self.path);
                    tracing::warn!(copy = ?copy, "the token file is damaged");
                    Err(AuthError::Damaged(match copy {
                        Ok(copy) => format!(
                            "the saved login was damaged: run `malt --login` (the old file is kept as {})",
                            copy.display()
                        ),
                        Err(e) => format!(
                            "the saved login is damaged: run `malt --login` ({}: {e})",
                            self.path.display()
                        ),
                    }))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuthError::Storage(format!(
                "cannot read the token file {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// Takes the lock that serialises refreshes across malt processes (a rotating refresh token
    /// can be spent once); released when the returned file is dropped.
    pub async fn lock(&self) -> Result<std::fs::File, AuthError> {
        let path = self.path.with_extension("lock");
        tokio::task::spawn_blocking(move || {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).truncate(false).write(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options.open(&path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| AuthError::Storage(format!("cannot lock the token file: {e}")))?
        .map_err(|e| AuthError::Storage(format!("cannot lock the token file: {e}")))
    }

    /// Writes the tokens atomically with mode 0600.
    pub fn save(&self, tokens: &TokenSet) -> Result<(), AuthError> {
        let bytes = serde_json::to_vec_pretty(tokens)
            .map_err(|e| AuthError::Storage(format!("cannot encode tokens: {e}")))?;
        crate::paths::write_private_atomic(&self.path, &bytes).map_err(|e| {
            AuthError::Storage(format!(
                "cannot save the token file {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// Why no valid access token can be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("not logged in")]
    NotLoggedIn,
    /// The refresh token was refused: only a new login helps.
    #[error("the session has expired")]
    SessionExpired,
    #[error("{0}")]
    Offline(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Server(String),
    /// The token file could not be read as tokens; it has been set aside.
    #[error("{0}")]
    Damaged(String),
}

struct State {
    tokens: Option<TokenSet>,
    /// The token set that was refused, so a new login (a changed file) can be noticed.
    expired: Option<TokenSet>,
}

/// The live session of one service: hands out access tokens, refreshes them before they expire
/// and when the service rejects one, and saves rotated tokens before using them.
pub struct Session {
    file: TokenFile,
    oauth: OAuthClient,
    state: Mutex<State>,
}

fn held_access(state: &State) -> Result<String, AuthError> {
    state
        .tokens
        .as_ref()
        .map(|t| t.access_token.clone())
        .ok_or(AuthError::NotLoggedIn)
}

/// Refresh this long before the access token expires.
pub const REFRESH_MARGIN_SECS: i64 = 300;

impl Session {
    pub fn new(file: TokenFile, oauth: OAuthClient) -> Session {
        Session {
            file,
            oauth,
            state: Mutex::new(State {
                tokens: None,
                expired: None,
            }),
        }
    }

    /// Loads the stored tokens if none are held, or if the held ones were refused and the file has
    /// changed since (the user logged in again).
    fn reload(&self, state: &mut State) -> Result<(), AuthError> {
        if state.tokens.is_some() {
            return Ok(());
        }
        match self.file.load()? {
            Some(t) if state.expired.as_ref() != Some(&t) => {
                state.tokens = Some(t);
                state.expired = None;
                Ok(())
            }
            Some(_) => Err(AuthError::SessionExpired),
            None if state.expired.is_some() => Err(AuthError::SessionExpired),
            None => Err(AuthError::NotLoggedIn),
        }
    }

    /// A usable access token, refreshing first when it is about to expire.
    pub async fn access(&self) -> Result<String, AuthError> {
        let mut state = self.state.lock().await;
        self.reload(&mut state)?;
        let due = state.tokens.as_ref().is_some_and(|t| t.remaining() <= 60);
        if due {
            self.refresh_locked(&mut state).await?;
        }
        held_access(&state)
    }

    /// The service rejected `rejected`: refresh once, however many requests saw the rejection at
    /// the same moment, and return the token to retry with.
    pub async fn after_rejected(&self, rejected: &str) -> Result<String, AuthError> {
        let mut state = self.state.lock().await;
        self.reload(&mut state)?;
        let still_current = state
            .tokens
            .as_ref()
            .is_some_and(|t| t.access_token == rejected);
        if still_current {
            self.refresh_locked(&mut state).await?;
        }
        held_access(&state)
    }

    /// Refreshes when the access token expires within the margin. Returns how long to wait before
    /// the next check.
    pub async fn refresh_if_due(&self) -> Result<Duration, AuthError> {
        let mut state = self.state.lock().await;
        self.reload(&mut state)?;
        let remaining = state.tokens.as_ref().map_or(0, TokenSet::remaining);
        if remaining <= REFRESH_MARGIN_SECS {
            self.refresh_locked(&mut state).await?;
        }
        let remaining = state.tokens.as_ref().map_or(0, TokenSet::remaining);
        let wait = (remaining - REFRESH_MARGIN_SECS).clamp(30, 24 * 3600);
        Ok(Duration::from_secs(wait as u64))
    }

    async fn refresh_locked(&self, state: &mut State) -> Result<(), AuthError> {
        let Some(current) = state.tokens.clone() else {
            return Err(AuthError::NotLoggedIn);
        };
        // Another malt may be refreshing the same session: take the lock, then look at the file
        // again. If it holds other tokens, that process has refreshed (or the user logged in).
        let _lock = self.file.lock().await?;
        if let Some(stored) = self.file.load()?
            && stored != current
            && state.expired.as_ref() != Some(&stored)
        {
            tracing::info!("the session was renewed elsewhere; using the stored tokens");
            state.tokens = Some(stored);
            return Ok(());
        }
        if current.refresh_token.is_empty() {
            state.expired = state.tokens.take();
            return Err(AuthError::SessionExpired);
        }
        match self.oauth.refresh(&current.refresh_token).await {
            Ok(fresh) => {
                // A rotated refresh token is only as good as its copy on disk: save it first.
                self.file.save(&fresh)?;
                tracing::info!(expires_at = fresh.expires_at, "access token refreshed");
                state.tokens = Some(fresh);
                Ok(())
            }
            Err(OAuthError::Refused { status, error, .. }) if status < 500 => {
                tracing::warn!(status, error = %error, "refresh token refused; the session has expired");
                state.expired = state.tokens.take();
                Err(AuthError::SessionExpired)
            }
            Err(OAuthError::Network(e)) => Err(AuthError::Offline(e)),
            Err(OAuthError::Local(e)) => Err(AuthError::Storage(e)),
            Err(e) => Err(AuthError::Server(e.to_string())),
        }
    }
}
