//! The support ticket's data: who (account, contact, the bot's own server addresses, from the
//! playbook's inputs, each absent one replaced by a placeholder that names the input), what
//! (every fill of the unauthorized orders with its trade id, price, volume, amount and fee;
//! the withdrawals with network, destination and txid), how much (the estimated loss and an
//! explicit request for compensation), the key (masked, its IP allowlist, its deletion), and
//! the requests to the exchange. Values that differ by language come twice: `en`, and `local`
//! for the exchange's home language, which holds no English sentence.

use serde::Serialize;

use crate::exchange::Order;
use crate::report::facts::{Revocation, RunFacts};
use crate::report::joined::{utc_short, Joined};
use crate::report::sanitize::clean;

use super::{LossView, Totals, TransferView, MAX_LISTED};

/// A value in English and in the exchange's home language.
#[derive(Debug, Default, Serialize)]
pub struct Both {
    pub en: String,
    pub local: String,
}

#[derive(Debug, Serialize)]
pub struct TicketView {
    /// A block in the exchange's home language comes first (it is not English).
    pub has_local: bool,
    /// The exchange's home language code (`en` when unknown).
    pub language: String,
    /// Times are shown in a local zone besides UTC (not when the exchange keeps UTC).
    pub two_clocks: bool,
    /// Something unauthorized was found; without it the ticket asks the exchange to confirm.
    pub found: bool,
    pub account: Both,
    pub contact: Both,
    pub discovered_at: Both,
    pub leak_vector: Both,
    pub bot_ips: Both,
    /// The key's IP allowlist, as far as the run knows it.
    pub ip_allowlist: Both,
    /// The key's deletion: when the exchange started refusing it, or that it was not seen.
    pub key_state: Both,
    /// First and last unauthorized action, local time then UTC.
    pub first: String,
    pub last: String,
    pub markets: String,
    /// Flagged orders with at least one fill, and their fills.
    pub filled_orders: usize,
    pub fills: Vec<TicketFill>,
    pub fills_more: usize,
    /// Flagged orders that never filled (placed, then cancelled or expired).
    pub unfilled: Vec<TicketOrder>,
    pub unfilled_more: usize,
    pub withdrawals: Vec<TransferView>,
    pub review: usize,
    /// The requests to the exchange, numbered (`1. …`).
    pub requests: Both2,
    /// The exchange's own notes for its support desk (its descriptor's texts), English.
    pub notes: Vec<String>,
    /// Where history is kept per market: the markets read and the completeness statement.
    pub history: Option<TicketHistory>,
}

/// The markets whose history the export read, for the ticket (English).
#[derive(Debug, Serialize)]
pub struct TicketHistory {
    pub count: usize,
    /// The first markets, comma-separated.
    pub symbols: String,
    /// How many more are in the statement file.
    pub more: usize,
    pub file: String,
    pub statement: String,
}

/// The most markets the ticket names (the statement file lists them all).
const MAX_MARKETS_NAMED: usize = 40;

/// A list in English and in the exchange's home language.
#[derive(Debug, Default, Serialize)]
pub struct Both2 {
    pub en: Vec<String>,
    pub local: Vec<String>,
}

/// The requests to the exchange: what to find, freeze and trace, and the compensation.
fn requests(found: bool, withdrawals: bool, total: &str) -> Both2 {
    let mut en: Vec<&str> = Vec::new();
    let mut ko: Vec<&str> = Vec::new();
    let comp_en = format!("I request compensation of the estimated loss of {total}.");
    let comp_ko = format!("위 추정 손실 {total}에 대한 보상을 요청합니다.");
    if found {
        en.push("Please give me the source IP addresses, times and User-Agents of the API calls that made the fills below. Calls from addresses other than the bot's server IPs above are the unauthorized ones.");
        ko.push("아래 체결을 만든 API 호출의 출발지 IP 주소, 호출 시각, User-Agent를 알려 주십시오. 위 봇 서버 IP가 아닌 주소에서 온 호출이 무단 호출입니다.");
        en.push("Please identify the counterparty accounts of these fills, and freeze those accounts and the related funds.");
        ko.push("아래 체결의 상대방 계정을 확인하고, 그 계정과 관련 자산을 동결해 주십시오.");
        if withdrawals {
            en.push("Please trace the withdrawal's transaction (txid) and contact the exchange or service that controls the destination address to freeze the funds. Please also tell me when the destination address was registered on the withdrawal allowlist, and from which IP address.");
            ko.push("위 출금의 트랜잭션(txid)을 추적하고, 수취 주소를 관리하는 거래소나 서비스에 연락하여 자금 동결을 요청해 주십시오. 수취 주소가 출금 허용 목록에 등록된 시각과 등록 요청의 IP 주소도 알려 주십시오.");
        }
        en.push("Please confirm the leaked key is deleted, and preserve the related logs for the police.");
        ko.push(
            "유출된 키의 삭제를 확인해 주시고, 수사기관 제출을 위해 관련 로그를 보존해 주십시오.",
        );
        en.push(&comp_en);
        ko.push(&comp_ko);
    } else {
        en.push("Please check whether this key was called from any address other than the bot's server IPs above during the investigation window.");
        ko.push("위 조사 기간 동안 이 키로 위 봇 서버 IP가 아닌 주소에서 호출된 기록이 있는지 확인해 주십시오.");
        en.push("Please confirm the leaked key is deleted, and preserve the related logs.");
        ko.push("유출된 키의 삭제를 확인해 주시고, 관련 로그를 보존해 주십시오.");
    }
    let number = |v: Vec<&str>| {
        v.into_iter()
            .enumerate()
            .map(|(i, r)| format!("{}. {r}", i + 1))
            .collect()
    };
    Both2 {
        en: number(en),
        local: number(ko),
    }
}

/// One fill of an unauthorized order.
#[derive(Debug, Serialize)]
pub struct TicketFill {
    pub order_id: String,
    /// The exchange's trade id (empty when the exchange gave only the order's totals).
    pub trade_id: String,
    pub market: String,
    pub side: String,
    pub local: String,
    pub utc: String,
    pub price: String,
    pub volume: String,
    pub amount: String,
    pub fee: String,
}

/// An unauthorized order that did not fill.
#[derive(Debug, Serialize)]
pub struct TicketOrder {
    pub order_id: String,
    pub market: String,
    pub side: String,
    pub local: String,
    pub utc: String,
    pub state: String,
}

/// A given input, or a placeholder naming it.
fn input(value: &Option<String>, name: &str, en: &str, local: &str) -> Both {
    match value {
        Some(v) => Both {
            en: clean(v),
            local: clean(v),
        },
        None => Both {
            en: format!("({en}: not given; set it with --input {name}=...)"),
            local: format!("({local}: 미입력, --input {name}=... 로 지정)"),
        },
    }
}

fn ip_allowlist(j: &Joined<'_>) -> Both {
    let current = j.input.keys.iter().find(|k| k.is_current);
    let listed = current.and_then(|k| k.allowed_ips.as_ref());
    let restricted = j.input.permissions.as_ref().and_then(|p| p.ip_restricted);
    match (listed, restricted) {
        (Some(ips), _) if !ips.is_empty() => Both {
            en: clean(&format!("restricted to {}", ips.join(", "))),
            local: clean(&format!("{} 로 제한됨", ips.join(", "))),
        },
        (Some(_), _) | (None, Some(false)) => Both {
            en: "none: the key worked from any IP address".into(),
            local: "없음: 어느 IP 주소에서나 사용 가능한 키였습니다".into(),
        },
        (None, Some(true)) => Both {
            en: "restricted to an IP allowlist (the exchange did not list the addresses)".into(),
            local: "IP 허용 목록으로 제한됨 (주소 목록은 확인 불가)".into(),
        },
        (None, None) => Both {
            en: "unknown to this tool: the exchange's API does not report it; please state it from your records".into(),
            local: "API로 확인할 수 없습니다. 귀사 기록으로 확인해 주십시오".into(),
        },
    }
}

fn key_state(facts: &RunFacts, j: &Joined<'_>) -> Both {
    match &facts.revocation {
        Revocation::Revoked {
            observed_at,
            refused_with,
            deleted_by_api_at,
            ..
        } => {
            let error = clean(refused_with.as_deref().unwrap_or("authentication error"));
            let by = deleted_by_api_at
                .zip(
                    crate::exchange::registry::get(&facts.exchange)
                        .map(|d| d.revoke.api_call)
                        .filter(|c| !c.is_empty()),
                )
                .map(|(at, call)| format!("deleted by respond at {} with {call}; ", j.when(at)))
                .unwrap_or_default();
            Both {
                en: format!(
                    "{by}deleted: your API refused it with {error} from {} on",
                    j.when(*observed_at)
                ),
                local: format!(
                    "삭제됨: {}부터 귀사 API가 이 키를 거부함 (오류 {error})",
                    j.when(*observed_at)
                ),
            }
        }
        Revocation::StillValid { checked_at } => Both {
            en: format!(
                "STILL VALID when last checked at {}: please disable it at once",
                j.when(*checked_at)
            ),
            local: format!(
                "{} 확인 시점에 아직 유효함: 즉시 사용을 중지해 주십시오",
                j.when(*checked_at)
            ),
        },
        Revocation::NotChecked => Both {
            en: "deletion not verified yet: please disable the key".into(),
            local: "삭제 미확인: 키 사용을 중지해 주십시오".into(),
        },
    }
}

/// Builds the ticket's data.
pub fn build(
    facts: &RunFacts,
    j: &Joined<'_>,
    loss: &LossView,
    totals: &Totals,
    withdrawals: &[TransferView],
) -> TicketView {
    let m = &j.money;
    let inc = &facts.incident;
    let flagged: Vec<&Order> = j.flagged().map(|(o, _)| o).collect();
    let mut fills = Vec::new();
    let mut fill_count = 0usize;
    let mut unfilled = Vec::new();
    let mut unfilled_count = 0usize;
    let mut filled_orders = 0usize;
    for o in &flagged {
        let quote = o.market.quote.as_str();
        let own = j.fills_by_order.get(o.id.as_str());
        if o.executed_volume.is_zero() && own.map_or(true, |f| f.is_empty()) {
            unfilled_count += 1;
            if unfilled.len() < MAX_LISTED {
                unfilled.push(TicketOrder {
                    order_id: clean(&o.id),
                    market: clean(o.market.as_str()),
                    side: o.side.as_str().into(),
                    local: j.local_short(o.created_at),
                    utc: utc_short(o.created_at),
                    state: format!("{:?}", o.state).to_lowercase(),
                });
            }
            continue;
        }
        filled_orders += 1;
        match own {
            Some(list) if !list.is_empty() => {
                for f in list {
                    fill_count += 1;
                    if fills.len() >= MAX_LISTED {
                        continue;
                    }
                    let fee = j
                        .fill_fee(o, f)
                        .map(|(fee, _)| m.amount(fee, quote))
                        .unwrap_or_default();
                    fills.push(TicketFill {
                        order_id: clean(&o.id),
                        trade_id: clean(&f.id),
                        market: clean(o.market.as_str()),
                        side: o.side.as_str().into(),
                        local: j.local_short(f.created_at),
                        utc: utc_short(f.created_at),
                        price: m.price(f.price, quote),
                        volume: f.volume.normalize().to_string(),
                        amount: m.amount(f.funds, quote),
                        fee,
                    });
                }
            }
            _ => {
                // The exchange gave the order's totals only.
                fill_count += 1;
                if fills.len() < MAX_LISTED {
                    let avg = o
                        .executed_funds
                        .filter(|_| !o.executed_volume.is_zero())
                        .map(|f| m.price((f / o.executed_volume).round_dp(8), quote))
                        .unwrap_or_default();
                    fills.push(TicketFill {
                        order_id: clean(&o.id),
                        trade_id: String::new(),
                        market: clean(o.market.as_str()),
                        side: o.side.as_str().into(),
                        local: j.local_short(o.created_at),
                        utc: utc_short(o.created_at),
                        price: avg,
                        volume: o.executed_volume.normalize().to_string(),
                        amount: o
                            .executed_funds
                            .map(|f| m.amount(f, quote))
                            .unwrap_or_default(),
                        fee: m.amount(o.paid_fee, quote),
                    });
                }
            }
        }
    }
    let mut markets: Vec<&str> = flagged.iter().map(|o| o.market.as_str()).collect();
    markets.sort_unstable();
    markets.dedup();
    let span = super::summary::span(j);
    let bot_ips = if inc.bot_ips.is_empty() {
        input(&None, "bot_ips", "the bot's server IPs", "봇 서버 IP")
    } else {
        let list = clean(&inc.bot_ips.join(", "));
        Both {
            en: list.clone(),
            local: list,
        }
    };
    let found = totals.flagged > 0 || totals.withdrawals_flagged > 0;
    TicketView {
        requests: requests(found, !withdrawals.is_empty(), &loss.total),
        notes: j
            .exchange
            .map(|d| d.texts.ticket_en.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default(),
        has_local: j.language().is_some_and(|l| l != "en"),
        language: j.language().unwrap_or("en").into(),
        two_clocks: j.input.local_utc_offset_secs != 0,
        found,
        account: input(&inc.account, "account", "account", "계정"),
        contact: input(&inc.contact, "contact", "contact", "연락처"),
        discovered_at: input(
            &inc.discovered_at,
            "discovered_at",
            "when the leak was discovered",
            "유출 인지 시각",
        ),
        leak_vector: input(
            &inc.leak_vector,
            "leak_vector",
            "how the key leaked",
            "유출 경로",
        ),
        bot_ips,
        ip_allowlist: ip_allowlist(j),
        key_state: key_state(facts, j),
        first: span.map(|(a, _)| j.when(a)).unwrap_or_default(),
        last: span.map(|(_, b)| j.when(b)).unwrap_or_default(),
        markets: clean(&markets.join(", ")),
        filled_orders,
        fills_more: fill_count.saturating_sub(fills.len()),
        fills,
        unfilled_more: unfilled_count.saturating_sub(unfilled.len()),
        unfilled,
        withdrawals: withdrawals.to_vec(),
        review: totals.review,
        history: facts.history_markets.as_ref().map(|h| TicketHistory {
            count: h.symbols.len(),
            symbols: clean(
                &h.symbols
                    .iter()
                    .take(MAX_MARKETS_NAMED)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            more: h.symbols.len().saturating_sub(MAX_MARKETS_NAMED),
            file: clean(&h.file),
            statement: clean(&h.statement),
        }),
    }
}
