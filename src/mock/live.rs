//! The live attacker: after the generated history, keeps trading with the leaked key (one
//! order every `min_interval_ms`..`max_interval_ms`) through the same order path and key checks
//! as an HTTP request, until the key is revoked or expires. Every order lands in the ground
//! truth, so a drill can count how many the responder let through.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::mock::matching::{round_vol, NewOrder};
use crate::mock::state::{OrdType, Side};
use crate::mock::MockExchange;

/// Spawns the attacker when the scenario enables it and the options allow it.
pub fn spawn(ex: &Arc<MockExchange>) -> Option<tokio::task::JoinHandle<()>> {
    let attack = ex.scenario.attack.clone()?;
    if !attack.live.enabled || !ex.opts.live_attacker {
        return None;
    }
    let market = attack
        .live
        .market
        .clone()
        .or_else(|| attack.pump.as_ref().map(|p| p.market.clone()))
        .or_else(|| attack.contra.as_ref().map(|c| c.market.clone()))
        .unwrap_or_else(|| ex.markets.specs[0].code.clone());
    let ex = Arc::clone(ex);
    let mut shutdown = ex.shutdown_signal();
    Some(tokio::spawn(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(ex.scenario.seed ^ 0x11FE);
        let leaked = ex.ground_truth().leaked_access_key;
        let mut failures = 0u32;
        loop {
            let ms = rng.gen_range(
                attack.live.min_interval_ms
                    ..=attack.live.max_interval_ms.max(attack.live.min_interval_ms),
            );
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(ms)) => {}
                _ = shutdown.wait_for(|v| *v) => return,
            }
            // Buy the pump coin with KRW while there is any, else dump a holding for KRW.
            let buy = rng.gen_bool(0.75);
            let req = if buy {
                NewOrder {
                    market: market.clone(),
                    side: Side::Bid,
                    ord_type: OrdType::Price,
                    price: Some(attack.live.order_krw),
                    volume: None,
                    identifier: None,
                    time_in_force: None,
                }
            } else {
                let r = ex.markets.ref_price(&market, ex.now());
                let v = round_vol(attack.live.order_krw / r.max(Decimal::new(1, 8)));
                NewOrder {
                    market: market.clone(),
                    side: Side::Ask,
                    ord_type: OrdType::Market,
                    price: None,
                    volume: Some(v),
                    identifier: None,
                    time_in_force: None,
                }
            };
            match crate::mock::server::internal_order(&ex, &leaked, req) {
                Ok(_) => failures = 0,
                Err(e) if e.status == 401 => {
                    tracing::info!(target: "respond::mock", "live attacker stopped: {}", e.message);
                    return;
                }
                Err(_) => {
                    failures += 1;
                    if failures > 50 {
                        return;
                    }
                }
            }
        }
    }))
}
