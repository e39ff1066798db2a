//! The registry of built-in step kinds. Each family registers itself here, so the set a
//! playbook may use (and `playbook check` knows) is defined in one place.

use std::sync::Arc;

use super::Registry;

/// Registers the exchange-independent kinds: `manual`, `notify.webhook`.
pub fn register_generic(reg: &mut Registry) {
    reg.register(Arc::new(super::manual::Manual));
    reg.register(Arc::new(super::notify::Webhook));
}

/// Every built-in kind (other families add their `register_*` call here).
pub fn registry() -> Registry {
    let mut reg = Registry::new();
    register_generic(&mut reg);
    super::exchange::register_exchange(&mut reg);
    reg.register(Arc::new(super::bot_logs::ImportBotLogs));
    reg.register(Arc::new(super::flag::Flag));
    reg.register(Arc::new(super::evidence::Evidence));
    reg
}
