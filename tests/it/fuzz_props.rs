//! Property fuzzing (proptest: `cargo fuzz` needs a nightly toolchain this project does not
//! assume) of everything that parses untrusted input: the playbook parser and validator, each
//! bot-log importer, the mock's JWT and query-hash verification, and the Upbit response
//! parsers. The property is "returns, Ok or Err, without panicking"; a hang would show as a
//! test that does not finish.
//!
//! Inputs are random bytes AND mutations of valid inputs (a valid file with a random splice),
//! since purely random bytes rarely get past the first check. `RESPOND_FUZZ_CASES` sets the
//! number of cases per property (default 256; `.ci/run` may raise it).

use std::path::Path;

use base64::Engine;
use proptest::prelude::*;
use respond::analysis::model::BotLogFormat;

fn cases() -> u32 {
    std::env::var("RESPOND_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid input with a random splice: `cut` bytes at `at` replaced by `with`.
fn mutate(base: &[u8], at: usize, cut: usize, with: &[u8]) -> Vec<u8> {
    let at = at % (base.len() + 1);
    let end = (at + cut).min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(with);
    v.extend_from_slice(&base[end..]);
    v
}

const PLAYBOOK: &str = include_str!("../../playbooks/leak.yaml");

const GENERIC_LOG: &str = "order_id,identifier,market,side,ord_type,created_at,price,volume\n\
c8ba9059-f2fb-4d35-a841-d3625d6249e2,grid-1,KRW-BTC,bid,limit,2026-11-16T06:34:36.000Z,135660000,0.00221572\n\
54db9da2-a5a8-4435-98e3-5e8d8ba1ae3d,grid-2,KRW-XRP,ask,price,2026-11-16T07:32:04.120Z,250000,\n";

const HUMMINGBOT_LOG: &str = "exchange_trade_id,config_file_path,strategy,market,symbol,base_asset,quote_asset,timestamp,order_id,trade_type,order_type,price,amount,leverage,trade_fee,trade_fee_in_quote,position\n\
t1,conf_pure_mm_1.yml,pure_market_making,upbit,BTC-KRW,BTC,KRW,1763275476000,buy-BTC-KRW-1,BUY,LIMIT,135660000,0.00221572,1,{},0,NIL\n";

const THREECOMMAS_LOG: &str =
    "id,bot,pair,status,created_at,closed_at,bought_volume,sold_volume,final_profit\n\
1,grid,KRW_BTC,completed,2026-11-16 06:34:36 UTC,2026-11-16 07:34:36 UTC,300000,301000,1000\n";

fn parse_log(bytes: &[u8], forced: Option<BotLogFormat>, name: &str) {
    let p = Path::new(name);
    let _ = respond::analysis::import::parse_bytes(
        &respond::exchange::upbit::DESCRIPTOR,
        p,
        p,
        bytes,
        forced,
        true,
        0,
    );
    let _ = respond::analysis::import::parse_bytes(
        &respond::exchange::upbit::DESCRIPTOR,
        p,
        p,
        bytes,
        forced,
        false,
        0,
    );
}

fn upbit_parsers(body: &[u8]) {
    use respond::exchange::upbit::wire;
    let _ = wire::parse_error_envelope(body);
    let _ = wire::parse_balances(body);
    let _ = wire::parse_api_keys(body, "abcd...wxyz");
    let _ = wire::parse_order(body, None);
    let _ = wire::parse_orders(body, None);
    let _ = wire::parse_order_states(body);
    let _ = wire::parse_batch_cancel(body);
    let _ = wire::parse_transfers(body, respond::exchange::TransferKind::Withdrawal, None);
    let _ = wire::parse_transfer(body, respond::exchange::TransferKind::Deposit, None);
    let _ = wire::parse_withdrawal_addresses(body);
    let _ = wire::parse_candles(body);
    if let Ok(s) = std::str::from_utf8(body) {
        let _ = wire::parse_time(s);
        let _ = wire::parse_remaining_req(s);
        let _ = wire::normalize_error_name(s);
        let _ = wire::order_state(s);
    }
}

/// Real response shapes to mutate.
const ORDER_JSON: &str = r#"[{"uuid":"c8ba9059-f2fb-4d35-a841-d3625d6249e2","side":"bid","ord_type":"limit","price":"135660000","state":"done","market":"KRW-BTC","created_at":"2026-11-16T15:34:36+09:00","volume":"0.00221572","remaining_volume":"0","reserved_fee":"150.29","remaining_fee":"0","paid_fee":"150.29","locked":"0","executed_volume":"0.00221572","trades_count":1,"identifier":"grid-1","trades":[{"market":"KRW-BTC","uuid":"t1","price":"135660000","volume":"0.00221572","funds":"300584.57","side":"bid","created_at":"2026-11-16T15:34:36+09:00"}]}]"#;
const BALANCES_JSON: &str = r#"[{"currency":"KRW","balance":"8000000.0","locked":"0.0","avg_buy_price":"0","avg_buy_price_modified":false,"unit_currency":"KRW"}]"#;
const CANDLES_JSON: &str = r#"[{"market":"KRW-BTC","candle_date_time_utc":"2026-11-16T06:00:00","candle_date_time_kst":"2026-11-16T15:00:00","opening_price":135000000,"high_price":136000000,"low_price":134000000,"trade_price":135500000,"timestamp":1763275476000,"candle_acc_trade_price":1.5e9,"candle_acc_trade_volume":11.2,"unit":60}]"#;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn playbook_parser_and_validator_never_panic(at in any::<usize>(), cut in 0usize..64, with in proptest::collection::vec(any::<u8>(), 0..64)) {
        let registry = respond::steps::builtin::registry();
        let src = mutate(PLAYBOOK.as_bytes(), at, cut, &with);
        let src = String::from_utf8_lossy(&src);
        let _ = respond::playbook::load_str(Path::new("fuzz.yaml"), &src, &registry);
    }

    #[test]
    fn playbook_parser_survives_arbitrary_text(src in ".{0,400}") {
        let registry = respond::steps::builtin::registry();
        let _ = respond::playbook::load_str(Path::new("fuzz.yaml"), &src, &registry);
    }

    #[test]
    fn bot_log_importers_never_panic(which in 0usize..4, at in any::<usize>(), cut in 0usize..40, with in proptest::collection::vec(any::<u8>(), 0..40)) {
        let (base, forced, name) = match which {
            0 => (GENERIC_LOG, Some(BotLogFormat::Generic), "bot.csv"),
            1 => (HUMMINGBOT_LOG, Some(BotLogFormat::Hummingbot), "trades_conf.csv"),
            2 => (THREECOMMAS_LOG, Some(BotLogFormat::ThreeCommas), "deals.csv"),
            _ => (GENERIC_LOG, None, "bot.csv"),
        };
        parse_log(&mutate(base.as_bytes(), at, cut, &with), forced, name);
    }

    #[test]
    fn bot_log_importers_survive_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), which in 0usize..5) {
        let forced = [Some(BotLogFormat::Generic), Some(BotLogFormat::Hummingbot), Some(BotLogFormat::Hummingbot2020), Some(BotLogFormat::ThreeCommas), None][which];
        parse_log(&bytes, forced, "fuzz.csv");
    }

    #[test]
    fn mock_jwt_and_query_hash_never_panic(header in proptest::collection::vec(any::<u8>(), 0..80), payload in proptest::collection::vec(any::<u8>(), 0..200), sig in proptest::collection::vec(any::<u8>(), 0..64), raw in ".{0,200}", query in ".{0,200}") {
        use respond::mock::upbit::auth;
        for token in [format!("{}.{}.{}", b64(&header), b64(&payload), b64(&sig)), raw.clone()] {
            let _ = auth::peek_claims(&token);
            let _ = auth::verify_signature(&token, "secret");
            let params = auth::parse_query(&query);
            let _ = auth::hash_input(&params);
            let _ = auth::query_hash(&params);
            let authz = format!("Bearer {token}");
            let req = auth::RequestAuth { authorization: Some(&authz), params: &params, ip: None, scope: Some("view_account") };
            let mut nonces = auth::NonceStore::new(std::time::Duration::from_secs(60), 100);
            let _ = auth::authenticate(&req, |_| None, &mut nonces, chrono::Utc::now(), 403);
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&raw) {
            let _ = auth::json_params(&v);
        }
    }

    #[test]
    fn mock_jwt_with_json_claims_never_panics(access in ".{0,40}", nonce in ".{0,40}", hash in ".{0,130}", alg in "(HS256|HS512|none|RS256|.{0,8})") {
        use respond::mock::upbit::auth;
        let header = serde_json::json!({"alg": alg, "typ": "JWT"}).to_string();
        let payload = serde_json::json!({"access_key": access, "nonce": nonce, "query_hash": hash, "query_hash_alg": "SHA512"}).to_string();
        let token = format!("{}.{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()), b64(b"sig"));
        let _ = auth::peek_claims(&token);
        let _ = auth::verify_signature(&token, &access);
    }

    #[test]
    fn upbit_response_parsers_never_panic(which in 0usize..3, at in any::<usize>(), cut in 0usize..40, with in "[\\[\\]{}\",:0-9a-z.\\-+eE ]{0,40}") {
        let base = [ORDER_JSON, BALANCES_JSON, CANDLES_JSON][which];
        upbit_parsers(&mutate(base.as_bytes(), at, cut, with.as_bytes()));
    }

    #[test]
    fn upbit_response_parsers_survive_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        upbit_parsers(&bytes);
    }
}

/// Found by `playbook_parser_and_validator_never_panic` (20,000 cases): a template error whose
/// offset falls inside a multi-byte character made the validator slice a string mid-character.
#[test]
fn regression_template_error_inside_a_multibyte_character() {
    let registry = respond::steps::builtin::registry();
    for bad in [
        "{{i\\uFFFD\\u0002ts.rotate_days}}",
        "{{\\uFFFD\\u0002uts.x}}",
        "{{inputs.x\\u00e9\\u0002}}",
    ] {
        let src = format!(
            "name: t\ndescription: d\nsteps:\n  - id: a\n    uses: report.evidence\n    with:\n      excel: \"{bad}\"\n"
        );
        let r = respond::playbook::load_str(Path::new("t.yaml"), &src, &registry);
        assert!(r.is_err(), "{bad} must be rejected");
    }
}
