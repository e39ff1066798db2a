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

/// How a key signs: with a shared secret (HMAC, the secret is a random string), with an
/// Ed25519 key pair (the secret is the private key as PKCS#8 PEM; the exchange keeps the
/// public key) or with a P-256 ECDSA key pair (`es256`: the secret is the private key as SEC1
/// PEM, `-----BEGIN EC PRIVATE KEY-----`). A façade says which kinds its exchange issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    #[default]
    Hmac,
    Ed25519,
    Es256,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Hmac => "hmac",
            KeyType::Ed25519 => "ed25519",
            KeyType::Es256 => "es256",
        }
    }
}

/// DER prefix of an Ed25519 private key in PKCS#8 v1 (RFC 8410), followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 public key in SubjectPublicKeyInfo, followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_der(text: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text.trim().strip_prefix(&begin)?.strip_suffix(&end)?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// An Ed25519 key pair from its 32-byte seed: (private key PEM, public key PEM).
pub fn ed25519_pem_pair(seed: &[u8; 32]) -> (String, String) {
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .expect("any 32 bytes are an Ed25519 seed");
    let mut private = ED25519_PKCS8_PREFIX.to_vec();
    private.extend_from_slice(seed);
    let mut public = ED25519_SPKI_PREFIX.to_vec();
    public.extend_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
    (pem("PRIVATE KEY", &private), pem("PUBLIC KEY", &public))
}

/// The seed in an Ed25519 private key PEM (PKCS#8 v1, as [`ed25519_pem_pair`] writes it);
/// None for anything else.
pub fn ed25519_seed(private_pem: &str) -> Option<[u8; 32]> {
    let der = pem_der(private_pem, "PRIVATE KEY")?;
    let seed = der.strip_prefix(&ED25519_PKCS8_PREFIX[..])?;
    seed.try_into().ok()
}

/// The raw 32-byte key in an Ed25519 public key PEM (SubjectPublicKeyInfo); None for
/// anything else.
pub fn ed25519_public_key(public_pem: &str) -> Option<[u8; 32]> {
    let der = pem_der(public_pem, "PUBLIC KEY")?;
    let key = der.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    key.try_into().ok()
}

/// DER of a P-256 private key in SEC1 (RFC 5915, as OpenSSL writes it) up to the
/// 32-byte scalar; [`SEC1_P256_MIDDLE`] and the 65-byte public point follow.
const SEC1_P256_PREFIX: [u8; 7] = [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
/// Between the scalar and the public point: the curve (prime256v1) and the BIT STRING header.
const SEC1_P256_MIDDLE: [u8; 16] = [
    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0xa1, 0x44, 0x03, 0x42,
];
/// DER prefix of a P-256 public key in SubjectPublicKeyInfo, followed by the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The public point (65 bytes, uncompressed) of a P-256 scalar; None when the 32 bytes are
/// not a valid scalar (zero or not below the group order).
pub fn p256_public_point(scalar: &[u8; 32]) -> Option<[u8; 65]> {
    // ring computes the point only while generating a key: it is handed the scalar as its
    // "random" bytes (ring's fixed-bytes source, a test helper marked deprecated).
    #[allow(deprecated)]
    let rng = ring::test::rand::FixedSliceRandom { bytes: scalar };
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).ok()?;
    let der = pkcs8.as_ref();
    // ring's PKCS#8 ends with the BIT STRING holding the point.
    let point: [u8; 65] = der.get(der.len().checked_sub(65)?..)?.try_into().ok()?;
    let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        alg,
        scalar,
        &point,
        &ring::rand::SystemRandom::new(),
    )
    .ok()?;
    (ring::signature::KeyPair::public_key(&pair).as_ref() == point).then_some(point)
}

/// A P-256 key pair from its scalar: (private key SEC1 PEM, public key PEM); None when the
/// bytes are not a valid scalar.
pub fn p256_pem_pair(scalar: &[u8; 32]) -> Option<(String, String)> {
    let point = p256_public_point(scalar)?;
    let mut private = SEC1_P256_PREFIX.to_vec();
    private.extend_from_slice(scalar);
    private.extend_from_slice(&SEC1_P256_MIDDLE);
    private.push(0x00);
    private.extend_from_slice(&point);
    let mut public = P256_SPKI_PREFIX.to_vec();
    public.extend_from_slice(&point);
    Some((pem("EC PRIVATE KEY", &private), pem("PUBLIC KEY", &public)))
}

/// The scalar in a P-256 SEC1 private key PEM whose public point matches it; None for
/// anything else.
pub fn p256_scalar(private_pem: &str) -> Option<[u8; 32]> {
    let der = pem_der(private_pem, "EC PRIVATE KEY")?;
    let rest = der.strip_prefix(&SEC1_P256_PREFIX[..])?;
    let scalar: [u8; 32] = rest.get(..32)?.try_into().ok()?;
    let tail = rest.get(32..)?.strip_prefix(&SEC1_P256_MIDDLE[..])?;
    let point = tail.strip_prefix(&[0x00][..])?;
    (p256_public_point(&scalar)?[..] == *point).then_some(scalar)
}

/// The 65-byte point in a P-256 public key PEM (SubjectPublicKeyInfo); None otherwise.
pub fn p256_public_key(public_pem: &str) -> Option<[u8; 65]> {
    let der = pem_der(public_pem, "PUBLIC KEY")?;
    der.strip_prefix(&P256_SPKI_PREFIX[..])?.try_into().ok()
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
    /// The HMAC secret, or the Ed25519 or P-256 private key (PEM) the user keeps.
    pub secret_key: String,
    pub passphrase: Option<String>,
    pub key_type: KeyType,
    /// The Ed25519 or P-256 public key (PEM) the exchange verifies with.
    pub public_key: Option<String>,
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
            .field("key_type", &self.key_type)
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
    /// When the key was created, for façades that show it: the venue keeps no creation time,
    /// so it is a year before the expiry.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.expire_at - chrono::Duration::days(365)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_pem_pair_matches_the_reference_vector() {
        // docs/exchanges/binance.md §3.2: the seed 00 01 … 1f.
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        let (private, public) = ed25519_pem_pair(&seed);
        assert_eq!(
            private,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n-----END PRIVATE KEY-----\n"
        );
        assert_eq!(
            public,
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----\n"
        );
        assert!(
            private.len() < 120,
            "clients tell Ed25519 from RSA PEMs by length"
        );
        assert_eq!(ed25519_seed(&private), Some(seed));
        assert_eq!(
            hex::encode(ed25519_public_key(&public).unwrap()),
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        assert_eq!(ed25519_seed(&public), None);
        assert_eq!(ed25519_seed("not a pem"), None);
        assert_eq!(ed25519_public_key(&private), None);
    }

    #[test]
    fn p256_pem_pair_matches_the_coinbase_reference_vector() {
        // docs/exchanges/coinbase.md §3.3 V2.
        let scalar: [u8; 32] =
            hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
                .unwrap()
                .try_into()
                .unwrap();
        let (private, public) = p256_pem_pair(&scalar).unwrap();
        assert_eq!(
            private,
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIMmvqdhFunUWa1whV2ex1pNOUMPbNuibEnuKYisSD2choAoGCCqGSM49\nAwEHoUQDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Z5A/4QCLi8\nmaQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==\n-----END EC PRIVATE KEY-----\n"
        );
        assert_eq!(
            hex::encode(&p256_public_key(&public).unwrap()[1..33]),
            "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
        );
        assert_eq!(p256_scalar(&private), Some(scalar));
        assert_eq!(p256_public_point(&[0u8; 32]), None);
        assert_eq!(p256_public_point(&[0xffu8; 32]), None);
        // A point that does not belong to the scalar is refused.
        let mut other = scalar;
        other[31] ^= 1;
        let (p2, _) = p256_pem_pair(&other).unwrap();
        let mut der = pem_der(&private, "EC PRIVATE KEY").unwrap();
        let theirs = pem_der(&p2, "EC PRIVATE KEY").unwrap();
        der[56..].copy_from_slice(&theirs[56..]);
        assert_eq!(p256_scalar(&pem("EC PRIVATE KEY", &der)), None);
        assert_eq!(p256_scalar(&public), None);
    }
}
