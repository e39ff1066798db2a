//! Bybit's raw responses decoded for the offline rebuild ([`crate::exchange::replay`]): which
//! endpoint holds which data, parsed with the same [`super::wire`] functions and the same
//! market list (the `instruments-info` answers recorded before, in the rebuild's context) the
//! live client used, so a bundle re-analyzed later yields exactly what the run saw.
//!
//! Writes (cancels, key deletion) decode to nothing: the listings around them hold every
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

/// Decodes one successful raw answer by its endpoint; endpoints the investigation does not
/// read decode to [`Decoded::Nothing`].
pub fn decode_raw(
    side: &RawSidecar,
    body: &[u8],
    ctx: &DecodeContext<'_>,
) -> Result<Decoded, DecodeError> {
    let prov = || Some(provenance(side));
    let markets = ctx.markets;
    Ok(match (side.method.as_str(), side.endpoint.as_str()) {
        ("GET", "/v5/market/instruments-info") => {
            Decoded::Markets(wire::parse_instruments(body)?.rows)
        }
        ("GET", "/v5/account/wallet-balance") => Decoded::Balances(wire::parse_balances(body)?),
        ("GET", "/v5/user/query-api") => Decoded::Keys(wire::parse_api_keys(body, &side.key)?),
        ("GET", "/v5/order/realtime" | "/v5/order/history") => {
            Decoded::Orders(wire::parse_orders(body, markets, prov())?.rows)
        }
        ("GET", "/v5/execution/list") => {
            Decoded::Fills(wire::parse_executions(body, markets, prov())?.rows)
        }
        ("GET", "/v5/asset/withdraw/query-record") => Decoded::Transfers(
            TransferKind::Withdrawal,
            wire::parse_withdrawals(body, prov())?.rows,
        ),
        ("GET", "/v5/asset/deposit/query-record") => Decoded::Transfers(
            TransferKind::Deposit,
            wire::parse_deposits(body, prov())?.rows,
        ),
        ("GET", "/v5/asset/withdraw/query-address") => {
            Decoded::WithdrawalAddresses(wire::parse_addresses(body)?.rows)
        }
        ("GET", "/v5/market/kline") => {
            let symbol = param(side, "symbol").unwrap_or_default();
            let market = markets
                .get(symbol)
                .map(|m| m.market.clone())
                .or_else(|| super::split_symbol(symbol).map(|(b, q)| Market::new(symbol, b, q)))
                .unwrap_or_else(|| Market::new(symbol, symbol, ""));
            Decoded::Candles(wire::parse_klines(body, &market)?)
        }
        _ => Decoded::Nothing,
    })
}
