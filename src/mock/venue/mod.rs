//! The exchange-neutral venue: the world a façade serves in its exchange's wire format.
//!
//! One [`Venue`] holds a scenario's world (accounts, balances per asset, markets in the
//! façade's quote currency, books, orders, transfers, keys) behind a mutex, plus the
//! rate-limit counters and replay store a façade configures, the injected faults, the clock,
//! the request log and the ground truth. Operations here are neutral (order kinds, permission
//! classes, [`matching::OrderError`], [`keys::KeyProblem`]); each façade names them its own way.
//!
//! Layout: [`scenario`] (YAML, neutral terms), [`translate`] (scenario → façade terms),
//! [`history`] (generated past, bot log, ground truth), [`matching`] (books, liquidity
//! provider, reference prices), [`rules`] (tick, lot, minimum value), [`state`] (the world),
//! [`keys`] (key records, permission classes and checks), [`ratelimit`] (counter core),
//! [`replay`] (nonces), [`faults`], [`clock`], [`live`] (the attacker who keeps trading until
//! the key is revoked), [`fragments`] (kept JSON texts of closed orders, pages written into one
//! buffer), [`jsontext`] (JSON written by hand for list pages).

pub mod clock;
pub mod faults;
pub mod fragments;
pub mod history;
pub mod jsontext;
pub mod keys;
pub mod live;
pub mod market_data;
pub mod matching;
pub mod ratelimit;
pub mod replay;
pub mod rules;
pub mod scenario;
pub mod state;
pub mod transfers;
pub mod translate;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::mock::{Facade, MockOptions};
use history::{BotLogRow, Gen};
use keys::{KeyProblem, KeyRec, KeyType, Permission};
use matching::{Markets, NewOrder, OrderError};
use ratelimit::{Budget, Verdict};
use scenario::{KeySpec, Scenario, ScenarioError};
use state::{GroundTruth, RequestRecord, Side, World};

/// A decimal as exchanges write it in JSON strings: no exponent, no trailing zeros, `0`.
pub fn dec(d: Decimal) -> String {
    let n = d.normalize();
    if n.is_zero() {
        "0".into()
    } else {
        n.to_string()
    }
}

/// A key as `respond mock serve` lists it on its first stdout line.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub account: String,
    pub label: String,
    pub access_key: String,
    pub secret_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// How the key signs; shown only when it is not `hmac` (`secret_key` is then the private
    /// key PEM).
    #[serde(skip_serializing_if = "is_hmac")]
    pub key_type: KeyType,
    /// The Ed25519 public key the exchange holds (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The façade's native scope names.
    pub scopes: Vec<String>,
    /// The neutral classes they grant.
    #[serde(skip)]
    pub permissions: BTreeSet<Permission>,
}

fn is_hmac(t: &KeyType) -> bool {
    *t == KeyType::Hmac
}

/// How a façade's keys look when the scenario does not fix them: lengths of the random
/// alphanumeric access key, secret and (when the exchange has one) passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFormat {
    pub access_len: usize,
    pub secret_len: usize,
    pub passphrase_len: Option<usize>,
}

/// Builds key records from scenario keys in a façade's terms.
pub struct KeyMaker<'a> {
    pub format: KeyFormat,
    /// The façade's native scopes and the class each grants, in its canonical order.
    pub scopes: &'a [(&'static str, Permission)],
    /// How the façade names a new key, when not by a random token of `format.access_len`
    /// ([`Facade::key_name`]).
    pub name: Option<fn(&mut dyn rand::RngCore) -> String>,
}

impl KeyMaker<'_> {
    /// The record for `spec`: secrets drawn from `g` when the scenario gives none; native
    /// scopes as given, then those the permission classes grant (in the façade's order).
    pub fn make(&self, g: &mut Gen, spec: &KeySpec, now: DateTime<Utc>) -> KeyRec {
        let access_key = spec.access_key.clone().unwrap_or_else(|| match self.name {
            Some(name) => name(&mut g.rng),
            None => g.token(self.format.access_len),
        });
        let (secret_key, public_key) = match spec.key_type {
            KeyType::Hmac => (
                spec.secret_key
                    .clone()
                    .unwrap_or_else(|| g.token(self.format.secret_len)),
                None,
            ),
            KeyType::Ed25519 => {
                // The scenario's private key (validated when it was loaded), else a new pair.
                let seed = spec
                    .secret_key
                    .as_deref()
                    .and_then(keys::ed25519_seed)
                    .unwrap_or_else(|| rand::Rng::gen(&mut g.rng));
                let (private, public) = keys::ed25519_pem_pair(&seed);
                (private, Some(public))
            }
            KeyType::Es256 => {
                // The scenario's private key (validated when it was loaded), else a new pair
                // (a draw that is no valid scalar is drawn again).
                let mut scalar = spec.secret_key.as_deref().and_then(keys::p256_scalar);
                let pair = loop {
                    let s = scalar.take().unwrap_or_else(|| rand::Rng::gen(&mut g.rng));
                    if let Some(pair) = keys::p256_pem_pair(&s) {
                        break pair;
                    }
                };
                (pair.0, Some(pair.1))
            }
        };
        let passphrase = match (&spec.passphrase, self.format.passphrase_len) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(n)) => Some(g.token(n)),
            (None, None) => None,
        };
        let mut scopes = spec.scopes.clone();
        for (name, class) in self.scopes {
            if spec.permissions.contains(class) && !scopes.iter().any(|s| s == name) {
                scopes.push(name.to_string());
            }
        }
        let mut permissions: BTreeSet<Permission> = spec.permissions.iter().copied().collect();
        for s in &scopes {
            if let Some((_, class)) = self.scopes.iter().find(|(n, _)| n == s) {
                permissions.insert(*class);
            }
        }
        KeyRec {
            account: spec.account.clone(),
            label: spec.label.clone(),
            access_key,
            secret_key,
            passphrase,
            key_type: spec.key_type,
            public_key,
            scopes,
            permissions,
            allowed_ips: spec
                .allowed_ips
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            expire_at: now + Duration::days(spec.expires_in_days),
            revoked_at: None,
        }
    }
}

/// Authentication and rate-limit state (a lock separate from the world).
pub struct Gate {
    pub nonces: replay::NonceStore,
    pub limiter: ratelimit::Limiter,
}

/// Why the in-process attacker's order did not go through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InProcessError {
    #[error(transparent)]
    Key(#[from] KeyProblem),
    #[error("rate limited")]
    RateLimited,
    #[error(transparent)]
    Order(#[from] OrderError),
}

/// The venue: a scenario's world in one façade's terms.
pub struct Venue {
    /// The scenario translated into the façade's quote currency.
    pub scenario: Scenario,
    pub opts: MockOptions,
    pub markets: Markets,
    /// The scenario's "now": history ends here.
    pub scenario_now: DateTime<Utc>,
    exchange: &'static str,
    clock: clock::Clock,
    order_budget: Option<Budget>,
    world: Mutex<World>,
    gate: Mutex<Gate>,
    faults: Mutex<faults::Faults>,
    bot_log: Vec<BotLogRow>,
    keys: Vec<KeyInfo>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Venue {
    /// Builds the world from a scenario in `facade`'s terms: translated markets and amounts,
    /// accounts, keys, generated history and ground truth. Fails (file:line:column) when the
    /// façade cannot take the scenario (a quote currency it has no rate for, a native scope
    /// it does not know).
    pub fn new(
        facade: &dyn Facade,
        scenario: Scenario,
        opts: MockOptions,
    ) -> Result<Arc<Venue>, ScenarioError> {
        let scenario = translate::translate(&scenario, facade)?;
        let now = clock::scenario_now(opts.now, scenario.now);
        let fixed = opts.now.is_some() || scenario.now.is_some();
        let markets = Markets::new(
            translate::markets(&scenario, facade),
            scenario.seed,
            now,
            scenario.fee,
            facade.price_rules(),
        );
        let mut world = World::default();
        let maker = KeyMaker {
            format: facade.key_format(),
            scopes: facade.scopes(),
            name: facade.key_name(),
        };
        let bot_log = history::build(&scenario, &maker, &markets, now, &mut world);
        let mut keys: Vec<KeyInfo> = scenario
            .keys
            .iter()
            .filter_map(|k| {
                world
                    .keys
                    .values()
                    .find(|r| r.label == k.label)
                    .map(|r| KeyInfo {
                        account: r.account.clone(),
                        label: r.label.clone(),
                        access_key: r.access_key.clone(),
                        secret_key: r.secret_key.clone(),
                        passphrase: r.passphrase.clone(),
                        key_type: r.key_type,
                        public_key: r.public_key.clone(),
                        scopes: r.scopes.clone(),
                        permissions: r.permissions.clone(),
                    })
            })
            .collect();
        keys.dedup_by(|a, b| a.access_key == b.access_key);
        let faults = faults::Faults::new(scenario.faults.clone(), scenario.seed);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        Ok(Arc::new(Venue {
            markets,
            scenario_now: now,
            exchange: facade.name(),
            clock: clock::Clock::new(now, fixed),
            order_budget: facade.order_budget(),
            world: Mutex::new(world),
            gate: Mutex::new(Gate {
                nonces: replay::NonceStore::new(opts.nonce_window, replay::NONCE_CAP),
                limiter: ratelimit::Limiter::new(facade.block_policy()),
            }),
            faults: Mutex::new(faults),
            bot_log,
            keys,
            shutdown,
            opts,
            scenario,
        }))
    }

    /// The name of the façade this venue was built for.
    pub fn exchange(&self) -> &'static str {
        self.exchange
    }

    /// The venue's clock (real time, shifted when the scenario fixes "now").
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The keys of the scenario, in scenario order.
    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }

    /// A key by its label.
    pub fn key(&self, label: &str) -> Option<&KeyInfo> {
        self.keys.iter().find(|k| k.label == label)
    }

    /// The bot's own log, as rows.
    pub fn bot_log(&self) -> &[BotLogRow] {
        &self.bot_log
    }

    /// The bot's own log in the generic bot-log CSV format.
    pub fn bot_log_csv(&self) -> String {
        history::bot_log_csv(&self.bot_log)
    }

    /// What really happened (grows while the live attacker trades).
    pub fn ground_truth(&self) -> GroundTruth {
        lock(&self.world).truth.clone()
    }

    /// When an order was created (drills score how many attacker orders got through after
    /// the run started).
    pub fn order_created_at(&self, uuid: &Uuid) -> Option<DateTime<Utc>> {
        lock(&self.world).order(uuid).map(|o| o.created_at)
    }

    /// The request log (most recent [`state::REQUEST_LOG_CAP`] requests).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.world).requests.iter().cloned().collect()
    }

    /// Revokes a key the way the user does in the web console. False when unknown.
    pub fn revoke_key(&self, access_key: &str) -> bool {
        let now = self.now();
        lock(&self.world).revoke_key(access_key, now)
    }

    /// Replaces the active fault rules.
    pub fn set_faults(&self, rules: Vec<faults::FaultRule>) {
        lock(&self.faults).set(rules);
    }

    /// Appends to the request log.
    pub fn log_request(&self, rec: RequestRecord) {
        lock(&self.world).log_request(rec);
    }

    /// Places an order in-process with `access_key` (the live attacker): the key checks an
    /// HTTP request gets without the signature (known, not revoked, not expired, allowed to
    /// trade), the façade's order budget, then the matching engine. The order lands in the
    /// ground truth (with its loss against the reference price) and in the request log.
    pub fn place_order_as(&self, access_key: &str, req: NewOrder) -> Result<Uuid, InProcessError> {
        let now = self.now();
        let result = (|| {
            let key = lock(&self.world)
                .keys
                .get(access_key)
                .cloned()
                .ok_or(KeyProblem::Unknown)?;
            key.check(Permission::Trade, now)?;
            if let Some(b) = self.order_budget {
                if let Verdict::TooMany | Verdict::Blocked { .. } =
                    self.gate().limiter.hit(b, access_key, 1, Instant::now())
                {
                    return Err(InProcessError::RateLimited);
                }
            }
            let mut w = self.world();
            let idx = matching::place(&mut w, &self.markets, &key.account, req, now)?;
            let o = w.orders[idx].clone();
            w.record_attacker_order(o.uuid, now);
            let mut loss = o.paid_fee;
            for f in &o.trades {
                let r = self.markets.ref_price(&f.market.symbol, now);
                loss += match f.side {
                    Side::Bid => (f.price - r) * f.volume,
                    Side::Ask => (r - f.price) * f.volume,
                };
            }
            w.add_loss(loss);
            Ok(o.uuid)
        })();
        let (status, error, created) = match &result {
            Ok(u) => (201, None, vec![*u]),
            Err(e) => (e.status(), Some(e.label().to_string()), Vec::new()),
        };
        self.log_request(RequestRecord {
            at: clock::ts(now),
            method: "POST".into(),
            path: "(live attacker, in-process) new order".into(),
            access_key: Some(access_key.to_string()),
            status,
            error,
            orders_created: created,
            orders_cancelled: Vec::new(),
            fault: None,
        });
        result
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }
    pub fn gate(&self) -> MutexGuard<'_, Gate> {
        lock(&self.gate)
    }
    pub fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        lock(&self.faults)
    }
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
    /// Releases requests held by injected timeouts and stops the live attacker.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl InProcessError {
    /// The HTTP status the request log records for an in-process action.
    pub fn status(&self) -> u16 {
        match self {
            InProcessError::Key(p) if p.is_dead() => 401,
            InProcessError::Key(_) => 403,
            InProcessError::RateLimited => 429,
            InProcessError::Order(_) => 400,
        }
    }
    /// A neutral name for the request log.
    pub fn label(&self) -> &'static str {
        match self {
            InProcessError::Key(KeyProblem::Unknown) => "key_unknown",
            InProcessError::Key(KeyProblem::Revoked) => "key_revoked",
            InProcessError::Key(KeyProblem::Expired) => "key_expired",
            InProcessError::Key(KeyProblem::IpNotAllowed) => "ip_not_allowed",
            InProcessError::Key(KeyProblem::Missing(_)) => "permission_denied",
            InProcessError::RateLimited => "rate_limited",
            InProcessError::Order(OrderError::InsufficientFunds { .. }) => "insufficient_funds",
            InProcessError::Order(OrderError::BelowMinNotional { .. }) => "below_min_notional",
            InProcessError::Order(_) => "order_refused",
        }
    }
}

/// A venue of built-in scenario `name` for `facade`, some of whose orders carry client ids
/// that need escaping in JSON (a quote, a backslash, a control character, non-ASCII): for
/// tests comparing a façade's text writers with its value builders.
#[cfg(test)]
pub fn odd_client_ids(facade: &dyn crate::mock::Facade, name: &str) -> Arc<Venue> {
    let sc = crate::mock::scenario::load(name, None).expect("a built-in scenario");
    let ex = Venue::new(facade, sc, crate::mock::MockOptions::default()).expect("it fits");
    {
        let mut w = ex.world();
        for (n, odd) in ["a\"b", "back\\slash", "\u{1}ctl", "é€😀"]
            .iter()
            .enumerate()
        {
            if let Some(o) = w.orders.get_mut(n * 7) {
                o.identifier = Some(odd.to_string());
            }
        }
    }
    ex
}

/// Checks a façade's direct text writer against its value builder for every order of the
/// built-in scenarios, client ids that need escaping included ([`odd_client_ids`]): `pair`
/// gives (text written, value builder's text) for an order, or `None` to skip it.
#[cfg(test)]
pub fn assert_order_texts(
    facade: &dyn Facade,
    pair: impl Fn(&World, usize) -> Option<(String, String)>,
) {
    let mut checked = 0;
    for name in ["pump-and-dump", "noisy", "legit-zoo", "contra"] {
        let ex = odd_client_ids(facade, name);
        let w = ex.world();
        for i in 0..w.orders.len() {
            if let Some((text, value)) = pair(&w, i) {
                assert_eq!(text, value, "{name} #{i}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}
