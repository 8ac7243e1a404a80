//! The server's configuration file (JSON): where to listen, the PostgreSQL connection of each
//! role, where the keys are (outside the database), and the bearer tokens (hashed) per role.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use consentkit_core::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest request body accepted unless the config says otherwise (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sends batches of its own device only.
    Device,
    /// Reads a subject's state, checks and timeline (read-only).
    Support,
    /// Support's reads plus export and erasure.
    Dpo,
    /// Reads and verifies the access log.
    Auditor,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Device => "device",
            Role::Support => "support",
            Role::Dpo => "dpo",
            Role::Auditor => "auditor",
        }
    }
}

/// One bearer token, stored as the SHA-256 of its text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds it (written to the access log as the actor).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// For a device token: the device it may send for.
    #[serde(default)]
    pub device: Option<String>,
    /// Hex SHA-256 of the token text (`consentkit-server hash-token` prints it).
    pub sha256: String,
    /// After this time (RFC 3339) the token is refused.
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

/// The PostgreSQL connection strings, one per database role (see `server/sql/roles.sql`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `consentkit_ingest`: INSERT and SELECT on events, never UPDATE or DELETE.
    pub ingest: String,
    /// `consentkit_support`: SELECT, and appends to the access log.
    pub support: String,
    /// `consentkit_dpo`: support's rights plus DELETE of a subject's rows.
    pub dpo: String,
    /// `consentkit_auditor`: SELECT on the access log.
    pub auditor: String,
    /// Connections per pool.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
}

fn default_pool_size() -> usize {
    8
}

/// The whole configuration file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` to listen on (`127.0.0.1:0` picks a free port; the server prints it).
    pub listen: String,
    /// The database roles.
    pub database: DatabaseConfig,
    /// File holding the HMAC key for subject pseudonyms (hex, at least 32 bytes). The environment
    /// variable `CONSENTKIT_SUBJECT_KEY` (hex) overrides it.
    #[serde(default)]
    pub subject_key_file: Option<PathBuf>,
    /// File holding the ed25519 signing key seed (64 hex characters). `CONSENTKIT_SIGNING_KEY` overrides it.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// A policy catalog JSON file (default: the built-in catalog).
    #[serde(default)]
    pub policy_file: Option<PathBuf>,
    /// Largest request body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The bearer tokens.
    pub tokens: Vec<TokenEntry>,
    /// How long a console session lasts.
    #[serde(default = "default_session_seconds")]
    pub console_session_seconds: u64,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` names the console's client, for the
    /// per-address sign-in lockout; empty (the default): the TCP peer is the client.
    #[serde(default)]
    pub console_trusted_proxies: Vec<std::net::IpAddr>,
}

fn default_session_seconds() -> u64 {
    30 * 60
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

impl Config {
    /// Reads and validates a config file; the error names the file and the bad field.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let config = config.relative_to(base);
        config.validate()?;
        Ok(config)
    }

    fn relative_to(mut self, base: &Path) -> Config {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut() {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        };
        fix(&mut self.subject_key_file);
        fix(&mut self.signing_key_file);
        fix(&mut self.policy_file);
        self
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for t in &self.tokens {
            // The access log and the console's lookups name the token: a name means one token.
            if !names.insert(t.name.as_str()) {
                return Err(format!("token '{}': another token has the same name (the access log names tokens by it)", t.name));
            }
            if t.sha256.len() != 64 || crate::wire::unhex(&t.sha256).is_none() {
                return Err(format!("token '{}': sha256 must be 64 hex characters", t.name));
            }
            if (t.role == Role::Device) != t.device.is_some() {
                return Err(format!("token '{}': a device token names its device, other roles do not", t.name));
            }
            // A device sends as its id only what the core takes as one (a URL path segment): a
            // token for any other text could never send a batch.
            if let Some(device) = t.device.as_deref() {
                consentkit_core::input::check_device(device).map_err(|e| format!("token '{}': {e}", t.name))?;
            }
            if seen.insert(t.sha256.to_lowercase(), &t.name).is_some() {
                return Err(format!("token '{}': the same token is listed twice", t.name));
            }
        }
        if self.max_body_bytes < 1024 {
            return Err(format!("max_body_bytes {} is below 1024", self.max_body_bytes));
        }
        Ok(())
    }
}

/// The hex SHA-256 of a token's text, as stored in the config.
pub fn hash_token(token: &str) -> String {
    consentkit_core::chain::hex(&Sha256::digest(token.as_bytes()))
}
