"""Drive the mock exchange with ccxt's `binance` class: an independent client.

Usage: ccxt_binance.py BASE_URL
Keys come from the environment, never argv: MOCK_BOT_KEY/MOCK_BOT_SECRET (can trade),
MOCK_READONLY_KEY/MOCK_READONLY_SECRET, MOCK_ATTACKER_KEY/MOCK_ATTACKER_SECRET.
ccxt runs with its default options (spot, futures and margin markets, currencies with a key):
only its URLs point at the mock. Prints one JSON line with what it checked; exits 1 on the
first failed check.
"""
import json
import os
import sys
import urllib.request

import ccxt

import common
from common import check, refused


def client(base, key, secret):
    return common.client("binance", base, key, secret)


def main():
    base = sys.argv[1]
    env = os.environ
    bot = client(base, env["MOCK_BOT_KEY"], env["MOCK_BOT_SECRET"])
    done = []

    markets = bot.load_markets()
    for s in ["BTC/USDT", "ETH/USDT", "TOKI/USDT", "MOCA/USDT"]:
        check(s in markets and markets[s]["spot"] and markets[s]["active"], "load_markets lists " + s)
    check(all(m["spot"] for m in markets.values()), "no futures markets")
    btc = markets["BTC/USDT"]
    check(btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.00001,
          "precision from PRICE_FILTER and LOT_SIZE: %s" % btc["precision"])
    check(btc["limits"]["cost"]["min"] == 5, "minimum cost from NOTIONAL")
    check("USDT" in bot.currencies and "TOKI" in bot.currencies, "currencies from capital/config/getall")
    done.append("load_markets")

    bal = bot.fetch_balance()
    check(abs(bal["total"]["USDT"] - 5714.29) < 0.01, "USDT balance: %s" % bal["total"].get("USDT"))
    check(bal["total"]["BTC"] == 0.12, "BTC balance")
    done.append("fetch_balance")

    last = bot.fetch_ticker("BTC/USDT")["last"]
    check(last and last > 0, "fetch_ticker has a last price")
    price = float(bot.price_to_precision("BTC/USDT", last * 0.8))
    limit = bot.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"clientOrderId": "ccxt-conf-1"})
    check(limit["id"] and limit["clientOrderId"] == "ccxt-conf-1", "limit order with its client id")
    check(limit["status"] == "open", "limit order is open, got %s" % limit["status"])
    done.append("create_limit_order")

    one = bot.fetch_order(limit["id"], "BTC/USDT")
    check(one["status"] == "open" and one["price"] == price and one["amount"] == 0.001, "fetch_order")
    opened = bot.fetch_open_orders("BTC/USDT")
    check([o["id"] for o in opened] == [limit["id"]], "fetch_open_orders shows the limit order")
    done.append("fetch_order")

    cancelled = bot.cancel_order(limit["id"], "BTC/USDT")
    check(cancelled["status"] == "canceled", "cancel_order: %s" % cancelled["status"])
    check(bot.fetch_order(limit["id"], "BTC/USDT")["status"] == "canceled", "cancelled order is canceled")
    done.append("cancel_order")

    a = bot.create_order("BTC/USDT", "limit", "buy", 0.001, price)
    b = bot.create_order("BTC/USDT", "limit", "buy", 0.002, price)
    check(a["clientOrderId"].startswith("x-"), "ccxt's own client id prefix: %s" % a["clientOrderId"])
    all_cancelled = bot.cancel_all_orders("BTC/USDT")
    check(sorted(o["id"] for o in all_cancelled) == sorted([a["id"], b["id"]]), "cancel_all_orders")
    check(bot.fetch_open_orders("BTC/USDT") == [], "nothing open after cancel_all_orders")
    done.append("cancel_all_orders")

    since = bot.milliseconds() - 60_000
    mkt = bot.create_market_buy_order_with_cost("TOKI/USDT", 20)
    check(mkt["status"] == "closed", "market buy by cost is closed, got %s" % mkt["status"])
    check(19.9 < mkt["cost"] <= 20, "it spent the cost: %s" % mkt["cost"])
    check(mkt["filled"] > 0 and len(mkt["trades"]) >= 1, "it has fills")
    done.append("create_market_buy_order_with_cost")

    trades = bot.fetch_my_trades("TOKI/USDT", since)
    mine = [t for t in trades if t["order"] == mkt["id"]]
    check(len(mine) >= 1 and abs(sum(t["cost"] for t in mine) - mkt["cost"]) < 1e-6, "fetch_my_trades")
    check(all(t["fee"]["currency"] == "USDT" for t in mine), "fees in USDT")
    done.append("fetch_my_trades")

    closed = bot.fetch_closed_orders("TOKI/USDT", since)
    check([o["id"] for o in closed] == [mkt["id"]], "fetch_closed_orders lists the market buy")
    done.append("fetch_closed_orders")

    deposits = bot.fetch_deposits()
    check(any(d["currency"] == "USDT" and d["status"] == "ok" for d in deposits), "fetch_deposits")
    check(bot.fetch_withdrawals("BTC", bot.milliseconds() - 30 * 86_400_000) == [], "fetch_withdrawals")
    done.append("transfers")

    ro = client(base, env["MOCK_READONLY_KEY"], env["MOCK_READONLY_SECRET"])
    refused(lambda: ro.create_order("BTC/USDT", "limit", "buy", 0.001, price),
            ccxt.AuthenticationError, "a read-only key trading")
    check(ro.fetch_balance()["total"]["USDT"] > 0, "a read-only key reads")
    done.append("read_only_refused_trading")

    wrong = client(base, env["MOCK_BOT_KEY"], "x" * 64)
    msg = refused(lambda: wrong.fetch_balance(), ccxt.AuthenticationError, "a wrong signature")
    check("-1022" in msg, "wrong signature is -1022: " + msg)
    stranger = client(base, "A" * 64, env["MOCK_BOT_SECRET"])
    msg = refused(lambda: stranger.fetch_balance(), ccxt.AuthenticationError, "an unknown key")
    check("-2015" in msg, "unknown key is -2015: " + msg)
    done.append("authentication_errors")

    attacker_key = env["MOCK_ATTACKER_KEY"]
    att = client(base, attacker_key, env["MOCK_ATTACKER_SECRET"])
    att.fetch_balance()
    req = urllib.request.Request("%s/_mock/keys/%s/revoke" % (base, attacker_key), method="POST")
    check(urllib.request.urlopen(req).status == 200, "revoke through the drill API")
    fresh = client(base, attacker_key, env["MOCK_ATTACKER_SECRET"])
    msg = refused(lambda: fresh.fetch_balance(), ccxt.AuthenticationError, "a revoked key")
    check("-2015" in msg, "revoked key is -2015: " + msg)
    # ccxt reads -2015 after a first success as a temporary ban.
    refused(lambda: att.fetch_balance(), ccxt.DDoSProtection, "a revoked key, once authenticated")
    done.append("revoked_key_refused")

    hammer = client(base, env["MOCK_READONLY_KEY"], env["MOCK_READONLY_SECRET"])
    limited = None
    for _ in range(400):
        try:
            hammer.publicGetExchangeInfo()
        except ccxt.DDoSProtection as e:
            limited = (str(e), dict(hammer.last_response_headers or {}))
            break
    check(limited is not None, "429 within 400 calls of weight 20")
    headers = {k.lower(): v for k, v in limited[1].items()}
    check(" 429 " in limited[0] and "-1003" in limited[0], "429 with -1003: " + limited[0])
    check(int(headers.get("retry-after", "0")) >= 1, "Retry-After on the 429: %s" % headers)
    banned = None
    for _ in range(30):
        try:
            hammer.publicGetTime()
        except ccxt.DDoSProtection as e:
            if " 418 " in str(e):
                banned = str(e)
                break
    check(banned is not None and "banned until" in banned, "418 after more 429s")
    done.append("rate_limiting")

    print(json.dumps({"ok": True, "checked": done, "ccxt": ccxt.__version__}))


if __name__ == "__main__":
    main()
