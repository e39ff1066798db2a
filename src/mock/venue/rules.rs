//! Price rules a façade imposes on the venue: tick size, volume and quote precision, and the
//! minimum order value. The venue rounds reference prices, liquidity levels, generated orders
//! and translated scenario amounts with them.

use rust_decimal::{Decimal, RoundingStrategy};

/// How prices snap to the tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickRule {
    /// Keep `digits` significant digits, at most `max_dp` decimals (integers above
    /// 10^digits round to a power of ten): a stand-in for tick tables that grow with price.
    Significant { digits: u32, max_dp: u32 },
    /// A fixed tick (0.01, 0.0001, …).
    Step(Decimal),
}

/// Tick, lot and minimum-value rules of a façade's markets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceRules {
    pub tick: TickRule,
    /// Decimals of a base volume (rounded toward zero).
    pub volume_dp: u32,
    /// Decimals of a quote amount (the quote currency's minor unit).
    pub quote_dp: u32,
    /// Smallest order value in the quote currency (> 0). The history generator sizes its
    /// small orders from it too.
    pub min_notional: Decimal,
}

impl PriceRules {
    /// Snaps a price to the tick (0 for non-positive prices).
    pub fn round_price(&self, p: Decimal) -> Decimal {
        if p <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        match self.tick {
            TickRule::Significant { digits, max_dp } => {
                let int_digits = p.trunc().to_string().trim_start_matches('0').len() as i64;
                let keep = digits as i64 - int_digits;
                if keep >= 0 {
                    p.round_dp(keep.min(max_dp as i64) as u32).normalize()
                } else {
                    let f = Decimal::from(10i64.pow((-keep) as u32));
                    ((p / f).round() * f).normalize()
                }
            }
            TickRule::Step(step) => {
                if step <= Decimal::ZERO {
                    return p.normalize();
                }
                ((p / step).round() * step).normalize()
            }
        }
    }

    /// The tick at price `p`: the step [`PriceRules::round_price`] snaps to there (façades
    /// that publish a fixed tick per market take it at the market's reference price).
    pub fn tick_at(&self, p: Decimal) -> Decimal {
        match self.tick {
            TickRule::Significant { digits, max_dp } => {
                let int_digits = p.trunc().to_string().trim_start_matches('0').len() as i64;
                let keep = digits as i64 - int_digits;
                if keep >= 0 {
                    Decimal::new(1, keep.min(max_dp as i64) as u32)
                } else {
                    Decimal::from(10i64.pow((-keep) as u32))
                }
            }
            TickRule::Step(step) => step,
        }
    }

    /// The lot: the smallest step of a base volume.
    pub fn lot(&self) -> Decimal {
        Decimal::new(1, self.volume_dp)
    }

    /// A base volume, rounded toward zero to the lot precision.
    pub fn round_volume(&self, v: Decimal) -> Decimal {
        v.round_dp_with_strategy(self.volume_dp, RoundingStrategy::ToZero)
            .normalize()
    }

    /// A quote amount rounded to the quote's minor unit.
    pub fn round_quote(&self, a: Decimal) -> Decimal {
        a.round_dp(self.quote_dp)
    }
}

/// Five significant digits, 8-decimal volumes, whole quote units, minimum 5,000 (unit tests).
#[cfg(test)]
pub(crate) fn sample() -> PriceRules {
    tests::sig5()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sig5() -> PriceRules {
        PriceRules {
            tick: TickRule::Significant {
                digits: 5,
                max_dp: 4,
            },
            volume_dp: 8,
            quote_dp: 0,
            min_notional: Decimal::from(5000),
        }
    }

    #[test]
    fn significant_digits_round_like_a_growing_tick_table() {
        let r = sig5();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(r.round_price(d("135123456")), d("135120000"));
        assert_eq!(r.round_price(d("3101.7")), d("3101.7"));
        assert_eq!(r.round_price(d("142.123456")), d("142.12"));
        assert_eq!(r.round_price(d("0.123456")), d("0.1235"));
        assert_eq!(r.round_price(d("-1")), Decimal::ZERO);
        assert_eq!(r.round_volume(d("0.123456789")), d("0.12345678"));
        assert_eq!(r.lot(), d("0.00000001"));
    }

    #[test]
    fn the_tick_at_a_price_is_the_step_prices_snap_to() {
        let r = sig5();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        for (p, tick) in [
            ("135123456", "10000"),
            ("96428.57", "1"),
            ("3101.7", "0.1"),
            ("142.123", "0.01"),
            ("2.2142", "0.0001"),
            ("0.0264286", "0.0001"),
        ] {
            let t = r.tick_at(d(p));
            assert_eq!(t, d(tick), "{p}");
            let snapped = r.round_price(d(p));
            assert!((snapped / t).fract().is_zero(), "{p}: {snapped} on {t}");
        }
        let step = PriceRules {
            tick: TickRule::Step(Decimal::new(1, 2)),
            ..sig5()
        };
        assert_eq!(step.tick_at(d("96428.5712")), d("0.01"));
    }

    #[test]
    fn fixed_step() {
        let r = PriceRules {
            tick: TickRule::Step(Decimal::new(1, 2)),
            ..sig5()
        };
        assert_eq!(
            r.round_price("96428.5712".parse().unwrap()),
            "96428.57".parse::<Decimal>().unwrap()
        );
    }
}
