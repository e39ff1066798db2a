"""Drive the mock exchange with ccxt's `upbit` class: an independent client.

Usage: ccxt_upbit.py BASE_URL   (keys in MOCK_ACCESS_KEY / MOCK_SECRET_KEY, never on argv)
Prints one JSON line with what it checked; exits 1 on the first failed check.
"""
import json
import os
import sys

import ccxt


def check(cond, what):
    if not cond:
        print(json.dumps({"ok": False, "failed": what}))
        sys.exit(1)


def main():
    base = sys.argv[1]
    ex = ccxt.upbit({
        "apiKey": os.environ["MOCK_ACCESS_KEY"],
        "secret": os.environ["MOCK_SECRET_KEY"],
        "enableRateLimit": True,
    })
    ex.urls["api"] = {"public": base, "private": base}
    done = []

    markets = ex.load_markets()
    check("BTC/KRW" in markets and "ETH/KRW" in markets, "load_markets lists BTC/KRW and ETH/KRW")
    done.append("load_markets")

    bal = ex.fetch_balance()
    check(bal["total"].get("KRW", 0) > 0 and bal["total"].get("BTC", 0) > 0, "fetch_balance has KRW and BTC")
    done.append("fetch_balance")

    ticker = ex.fetch_ticker("BTC/KRW")
    last = ticker["last"]
    check(last and last > 0, "fetch_ticker has a last price")
    done.append("fetch_ticker")

    price = float(ex.price_to_precision("BTC/KRW", last * 0.8))
    limit = ex.create_order("BTC/KRW", "limit", "buy", 0.001, price, {"clientOrderId": "ccxt-conf-1"})
    check(limit["id"], "create limit order returns an id")
    check(limit.get("clientOrderId") == "ccxt-conf-1", "clientOrderId round-trips as identifier")
    done.append("create_limit_order")

    opened = ex.fetch_open_orders("BTC/KRW")
    check(any(o["id"] == limit["id"] for o in opened), "fetch_open_orders shows the limit order")
    done.append("fetch_open_orders")

    ex.cancel_order(limit["id"], "BTC/KRW")
    after = ex.fetch_order(limit["id"], "BTC/KRW")
    check(after["status"] == "canceled", "cancelled order is canceled, got %s" % after["status"])
    done.append("cancel_order")

    mkt = ex.create_market_buy_order_with_cost("BTC/KRW", 10000)
    check(mkt["id"], "market buy by cost returns an id")
    done.append("create_market_buy_order_with_cost")

    closed = ex.fetch_closed_orders("BTC/KRW")
    check(any(o["id"] == mkt["id"] for o in closed), "fetch_closed_orders lists the market buy")
    done.append("fetch_closed_orders")

    one = ex.fetch_order(mkt["id"], "BTC/KRW")
    check(one["status"] == "closed", "market buy is closed, got %s" % one["status"])
    check(len(one.get("trades") or []) >= 1, "fetch_order returns trades")
    # A market buy by price spends the funds less what cannot buy one more volume step at the
    # last level it reached (the remainder is unlocked, not spent): at BTC's price one step of
    # 1e-8 BTC is worth more than 1 KRW, so the cost may fall short of 10,000 by up to that.
    step = float(ex.markets["BTC/KRW"]["precision"].get("amount") or 1e-8)
    short = max(t["price"] for t in one["trades"]) * step
    check(10000 - short - 0.01 <= one["cost"] <= 10000 + 0.01,
          "cost is 10000 less at most one volume step (%s), got %s" % (short, one["cost"]))
    done.append("fetch_order_with_trades")

    print(json.dumps({"ok": True, "checked": done, "ccxt": ccxt.__version__}))


if __name__ == "__main__":
    main()
