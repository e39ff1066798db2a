//! Coinbase's raw responses decoded for the offline rebuild ([`crate::exchange::replay`]):
//! which endpoint holds which data, parsed with the same [`super::wire`] functions the live
//! client used, so a bundle re-analyzed later yields exactly what the run saw. Product ids name
//! both currencies (`BTC-USD`), so no market list is needed.
//!
//! Writes (batch cancels) decode to nothing: the listings around them hold every order's state.
//! An App API transactions page holds sends and receives together: each transfer goes by its
//! own kind.

use crate::exchange::replay::{provenance, DecodeContext, DecodeError, Decoded};
use crate::exchange::{Market, MarketCache, TransferKind};
use crate::rundir::RawSidecar;

use super::wire;

const ORDERS: &str = "/api/v3/brokerage/orders/historical/";

/// The product of a candles path (`/api/v3/brokerage/market/products/BTC-USD/candles`).
fn candles_product(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/api/v3/brokerage/market/products/")
        .or_else(|| path.strip_prefix("/api/v3/brokerage/products/"))?;
    rest.strip_suffix("/candles")
}

/// Decodes one successful raw answer by its endpoint; endpoints the investigation does not
/// read decode to [`Decoded::Nothing`].
pub fn decode_raw(
    side: &RawSidecar,
    body: &[u8],
    _ctx: &DecodeContext<'_>,
) -> Result<Decoded, DecodeError> {
    let prov = || Some(provenance(side));
    let path = side.endpoint.as_str();
    if side.method != "GET" {
        return Ok(Decoded::Nothing);
    }
    Ok(match path {
        "/api/v3/brokerage/market/products" | "/api/v3/brokerage/products" => {
            Decoded::Markets(wire::parse_products(body)?)
        }
        "/api/v3/brokerage/accounts" => {
            Decoded::Balances(wire::balances(&wire::parse_accounts(body)?.rows))
        }
        "/api/v3/brokerage/key_permissions" => {
            Decoded::Keys(vec![wire::parse_key_permissions(body)?.key_info(&side.key)])
        }
        "/api/v3/brokerage/orders/historical/batch" => {
            Decoded::Orders(wire::parse_orders(body, prov())?.rows)
        }
        "/api/v3/brokerage/orders/historical/fills" => {
            Decoded::Fills(wire::parse_fills(body, prov())?.rows)
        }
        p if p.starts_with(ORDERS) && !p[ORDERS.len()..].contains('/') => {
            Decoded::Orders(vec![wire::parse_order(body, prov())?])
        }
        p if p.starts_with("/v2/accounts/") && p.ends_with("/transactions") => {
            let (page, _) = wire::parse_transactions(body, prov())?;
            Decoded::Transfers(TransferKind::Withdrawal, page.rows)
        }
        p => match candles_product(p) {
            Some(product) => {
                let market = wire::market_of(&mut MarketCache::default(), product);
                let _: &Market = &market;
                Decoded::Candles(wire::parse_candles(body, &market)?)
            }
            None => Decoded::Nothing,
        },
    })
}
