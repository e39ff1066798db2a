//! KuCoin's raw responses decoded for the offline rebuild ([`crate::exchange::replay`]):
//! which endpoint holds which data, parsed with the same [`super::wire`] functions and the
//! same market list (the `GET /api/v2/symbols` answer recorded before, in the rebuild's
//! context) the live client used, so a bundle re-analyzed later yields exactly what the run
//! saw.
//!
//! Writes (cancels, the key deletion) decode to nothing: the listings around them hold every
//! order's state.

use crate::exchange::replay::{provenance, DecodeContext, DecodeError, Decoded};
use crate::exchange::{Market, TransferKind};
use crate::rundir::RawSidecar;

use super::wire;

fn param<'a>(side: &'a RawSidecar, name: &str) -> Option<&'a str> {
    side.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A single-order path: `/api/v1/hf/orders/{id}`, `/api/v1/orders/{id}` or
/// `/api/v1/stop-order/{id}` (not a listing).
fn single_order(path: &str) -> bool {
    let rest = path
        .strip_prefix("/api/v1/hf/orders/")
        .or_else(|| path.strip_prefix("/api/v1/orders/"))
        .or_else(|| path.strip_prefix("/api/v1/stop-order/"));
    match rest {
        Some(r) => {
            !r.is_empty()
                && !matches!(r, "active" | "done" | "cancelAll")
                && !r.starts_with("active/")
        }
        None => false,
    }
}

/// Decodes one successful raw answer by its endpoint; endpoints the investigation does not
/// read decode to [`Decoded::Nothing`].
pub fn decode_raw(
    side: &RawSidecar,
    body: &[u8],
    ctx: &DecodeContext<'_>,
) -> Result<Decoded, DecodeError> {
    let prov = || Some(provenance(side));
    let markets = ctx.markets;
    let ep = side.endpoint.as_str();
    if side.method != "GET" {
        return Ok(Decoded::Nothing);
    }
    Ok(match ep {
        "/api/v2/symbols" => Decoded::Markets(wire::parse_symbols(body)?),
        "/api/v1/accounts" => Decoded::Balances(wire::parse_balances(body)?),
        "/api/v1/user/api-key" => Decoded::Keys(wire::parse_api_keys(body, &side.key)?),
        "/api/v1/hf/orders/active"
        | "/api/v1/hf/orders/done"
        | "/api/v1/orders"
        | "/api/v1/stop-order" => Decoded::Orders(wire::parse_orders(body, markets, prov())?.rows),
        "/api/v1/hf/fills" | "/api/v1/fills" => {
            Decoded::Fills(wire::parse_fills(body, markets, prov())?.rows)
        }
        "/api/v1/withdrawals" => Decoded::Transfers(
            TransferKind::Withdrawal,
            wire::parse_transfers(body, TransferKind::Withdrawal, prov())?.rows,
        ),
        "/api/v1/deposits" => Decoded::Transfers(
            TransferKind::Deposit,
            wire::parse_transfers(body, TransferKind::Deposit, prov())?.rows,
        ),
        "/api/v1/market/candles" => {
            let symbol = param(side, "symbol").unwrap_or_default();
            let market = markets
                .get(symbol)
                .map(|m| m.market.clone())
                .or_else(|| {
                    symbol
                        .split_once('-')
                        .map(|(b, q)| Market::new(symbol, b, q))
                })
                .unwrap_or_else(|| Market::new(symbol, symbol, ""));
            Decoded::Candles(wire::parse_candles(body, &market)?)
        }
        p if single_order(p) => Decoded::Orders(vec![wire::parse_order(body, markets, prov())?]),
        _ => Decoded::Nothing,
    })
}
