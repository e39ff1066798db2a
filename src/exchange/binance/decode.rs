//! Binance's raw responses decoded for the offline rebuild ([`crate::exchange::replay`]):
//! which endpoint holds which data, parsed with the same [`super::wire`] functions and the
//! same market list (the `exchangeInfo` answers recorded before, in the rebuild's context) the
//! live client used, so a bundle re-analyzed later yields exactly what the run saw.
//!
//! Cancel answers decode to nothing: they carry no creation time, and the listings and order
//! reads around them hold every order's state.

use crate::exchange::replay::{provenance, DecodeContext, DecodeError, Decoded};
use crate::exchange::{Market, TransferKind};
use crate::rundir::RawSidecar;

use super::wire;

/// The value of parameter `name` of the call.
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
        ("GET", "/api/v3/exchangeInfo") => Decoded::Markets(wire::parse_exchange_info(body)?),
        ("GET", "/api/v3/account") => Decoded::Balances(wire::parse_balances(body)?),
        ("GET", "/sapi/v1/account/apiRestrictions") => {
            Decoded::Keys(wire::parse_api_keys(body, &side.key)?)
        }
        ("GET", "/api/v3/openOrders" | "/api/v3/allOrders") => {
            Decoded::Orders(wire::parse_orders(body, markets, prov())?)
        }
        ("GET", "/api/v3/order") => Decoded::Order(
            Box::new(wire::parse_order(body, markets, prov())?),
            Vec::new(),
        ),
        ("GET", "/api/v3/myTrades") => Decoded::Fills(wire::parse_trades(body, markets, prov())?),
        ("GET", "/sapi/v1/capital/withdraw/history") => Decoded::Transfers(
            TransferKind::Withdrawal,
            wire::parse_withdrawals(body, prov())?,
        ),
        ("GET", "/sapi/v1/capital/deposit/hisrec") => {
            Decoded::Transfers(TransferKind::Deposit, wire::parse_deposits(body, prov())?)
        }
        ("GET", "/sapi/v1/capital/withdraw/address/list") => {
            Decoded::WithdrawalAddresses(wire::parse_addresses(body)?)
        }
        ("GET", "/api/v3/klines") => {
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
