//! Bearer tokens: looked up by their SHA-256 (the config holds only hashes), checked for expiry,
//! and turned into the caller a handler sees. Role checks name the role needed.

use std::collections::HashMap;

use axum::http::HeaderMap;

use crate::config::{hash_token, Role, TokenEntry};
use crate::error::ApiError;

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name (the access log's actor).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// For a device token, its device.
    pub device: Option<String>,
    /// When its token expires (a console session signed in with it ends then too).
    pub expires: Option<consentkit_core::Timestamp>,
}

/// The configured tokens, by hash.
pub struct Tokens(HashMap<String, TokenEntry>);

impl Tokens {
    /// Indexes the config's tokens.
    pub fn new(entries: &[TokenEntry]) -> Tokens {
        Tokens(entries.iter().map(|t| (t.sha256.to_lowercase(), t.clone())).collect())
    }

    /// The caller of a request, or 401 naming what is wrong with its credentials.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization header (expected: Bearer <token>)"))?;
        let text = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        // The scheme is case-insensitive (RFC 9110, section 11.1): `bearer <token>` is a bearer token too.
        let token = text
            .trim_start()
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header is not 'Bearer <token>'"))?;
        self.by_token(token)
    }

    /// The caller holding `token` (as typed into the console's sign-in), or 401: unknown, expired.
    pub fn by_token(&self, token: &str) -> Result<Caller, ApiError> {
        let entry = self.0.get(&hash_token(token)).ok_or_else(|| ApiError::unauthorized("unknown token"))?;
        if let Some(expires) = entry.expires {
            if expires <= crate::wire::now() {
                return Err(ApiError::unauthorized(format!("token '{}' expired at {expires}", entry.name)));
            }
        }
        Ok(Caller { name: entry.name.clone(), role: entry.role, device: entry.device.clone(), expires: entry.expires })
    }
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let needed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "{what} needs the role {}; token '{}' has the role {}",
            needed.join(" or "),
            self.name,
            self.role.as_str()
        )))
    }
}
