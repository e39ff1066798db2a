//! API keys as the venue stores them: the façade's native scope names next to neutral
//! permission classes, the IP allowlist, expiry and revocation, and the checks every façade
//! and the in-process attacker run in their own order.

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a key may do, whatever the exchange calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read balances, orders, transfers.
    Read,
    /// Place and cancel orders.
    Trade,
    /// Send funds off the exchange.
    Withdraw,
    /// Move funds between accounts or sub-accounts of the exchange.
    Transfer,
    /// Create deposit addresses.
    Deposit,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Read,
        Permission::Trade,
        Permission::Withdraw,
        Permission::Transfer,
        Permission::Deposit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Trade => "trade",
            Permission::Withdraw => "withdraw",
            Permission::Transfer => "transfer",
            Permission::Deposit => "deposit",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A key's secret material as a façade generates it.
#[derive(Clone)]
pub struct KeySecrets {
    pub access_key: String,
    pub secret_key: String,
    /// A third credential, for exchanges that ask for one.
    pub passphrase: Option<String>,
}

/// An API key as the exchange stores it. The secret is fake test material but still never
/// shows up in `Debug`.
#[derive(Clone)]
pub struct KeyRec {
    pub account: String,
    pub label: String,
    pub access_key: String,
    pub secret_key: String,
    pub passphrase: Option<String>,
    /// The façade's native scope names.
    pub scopes: Vec<String>,
    /// The neutral classes those scopes grant.
    pub permissions: BTreeSet<Permission>,
    pub allowed_ips: Vec<IpAddr>,
    pub expire_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for KeyRec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRec")
            .field("account", &self.account)
            .field("label", &self.label)
            .field("access_key", &self.access_key)
            .field("scopes", &self.scopes)
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

/// Why a key cannot be used, in neutral terms (each façade names it its own way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("unknown key")]
    Unknown,
    #[error("key revoked")]
    Revoked,
    #[error("key expired")]
    Expired,
    #[error("request from an IP address outside the key's allowlist")]
    IpNotAllowed,
    #[error("the key lacks the {0:?} permission")]
    Missing(Permission),
}

impl KeyProblem {
    /// True when the key can never work again (unknown, revoked, expired).
    pub fn is_dead(self) -> bool {
        matches!(
            self,
            KeyProblem::Unknown | KeyProblem::Revoked | KeyProblem::Expired
        )
    }
}

impl KeyRec {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expire_at <= now
    }
    /// An empty allowlist admits every address; an unknown address is refused otherwise.
    pub fn ip_allowed(&self, ip: Option<IpAddr>) -> bool {
        self.allowed_ips.is_empty() || ip.is_some_and(|ip| self.allowed_ips.contains(&ip))
    }
    pub fn has_scope(&self, native: &str) -> bool {
        self.scopes.iter().any(|s| s == native)
    }
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
    /// The in-process checks (no signature): revoked, expired, then the permission.
    pub fn check(&self, need: Permission, now: DateTime<Utc>) -> Result<(), KeyProblem> {
        if self.is_revoked() {
            return Err(KeyProblem::Revoked);
        }
        if self.is_expired(now) {
            return Err(KeyProblem::Expired);
        }
        if !self.can(need) {
            return Err(KeyProblem::Missing(need));
        }
        Ok(())
    }
}
