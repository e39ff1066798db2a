//! The live attacker: after the generated history, keeps trading with the leaked key (one
//! order every `min_interval_ms`..`max_interval_ms`) through the venue's in-process order path
//! with the same key checks as a request, until the key is revoked or expires. Every order
//! lands in the ground truth, so a drill can count how many the responder let through.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::mock::venue::matching::NewOrder;
use crate::mock::venue::state::{OrderKind, Side};
use crate::mock::venue::{InProcessError, Venue};

/// Spawns the attacker when the scenario enables it and the options allow it.
pub fn spawn(venue: &Arc<Venue>) -> Option<tokio::task::JoinHandle<()>> {
    let attack = venue.scenario.attack.clone()?;
    if !attack.live.enabled || !venue.opts.live_attacker {
        return None;
    }
    let base = attack
        .live
        .market
        .clone()
        .or_else(|| attack.pump.as_ref().map(|p| p.market.clone()))
        .or_else(|| attack.contra.as_ref().map(|c| c.market.clone()));
    let market = match base {
        Some(b) => venue.markets.by_base(&b)?.market.clone(),
        None => venue.markets.list.first()?.market.clone(),
    };
    // The venue resolved the default size into the façade's quote.
    let size = attack.live.order_quote?;
    let venue = Arc::clone(venue);
    let mut shutdown = venue.shutdown_signal();
    Some(tokio::spawn(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(venue.scenario.seed ^ 0x11FE);
        let leaked = venue.ground_truth().leaked_access_key;
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
            // Buy the pump coin with the quote while there is any, else dump a holding.
            let buy = rng.gen_bool(0.75);
            let req = if buy {
                NewOrder {
                    market: market.clone(),
                    side: Side::Bid,
                    kind: OrderKind::MarketBuyQuote,
                    price: None,
                    quote_amount: Some(size),
                    volume: None,
                    identifier: None,
                    tif: None,
                }
            } else {
                let r = venue.markets.ref_price(&market.symbol, venue.now());
                let v = venue.markets.round_vol(size / r.max(Decimal::new(1, 8)));
                NewOrder {
                    market: market.clone(),
                    side: Side::Ask,
                    kind: OrderKind::MarketSellBase,
                    price: None,
                    quote_amount: None,
                    volume: Some(v),
                    identifier: None,
                    tif: None,
                }
            };
            match venue.place_order_as(&leaked, req) {
                Ok(_) => failures = 0,
                Err(InProcessError::Key(p)) if p.is_dead() => {
                    tracing::info!(target: "respond::mock", "live attacker stopped: {p}");
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
