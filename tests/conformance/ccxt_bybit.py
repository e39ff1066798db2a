"""Drive the mock exchange with ccxt's `bybit` class: an independent client.

Usage: ccxt_bybit.py BASE_URL
Keys come from the environment, never argv: MOCK_BOT_KEY/MOCK_BOT_SECRET (can trade and
transfer, so it may delete itself), MOCK_READONLY_KEY/MOCK_READONLY_SECRET,
MOCK_ATTACKER_KEY/MOCK_ATTACKER_SECRET. ccxt runs with its default options (it loads spot,
linear, inverse and option markets and the currencies with a key; its default type is swap,
which the calls here never need: each names a symbol or a coin): only its URLs point at the
mock. Prints one
JSON line with what it checked; exits 1 on the first failed check.
"""
import json
import os
import re
import sys
import urllib.request

import ccxt


def check(cond, what):
    if not cond:
        print(json.dumps({"ok": False, "failed": what}))
        sys.exit(1)


def refused(call, kind, what):
    """The call raises `kind` (and nothing else); returns its message."""
    try:
        call()
    except kind as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - report what else it raised
        check(False, "%s: raised %s: %s" % (what, type(e).__name__, e))
    check(False, "%s: no error" % what)


def client(base, key, secret):
    ex = ccxt.bybit({"apiKey": key, "secret": secret, "enableRateLimit": False})
    ex.urls["api"] = {k: re.sub(r"^https://[^/]+", base, v) for k, v in ex.urls["api"].items()}
    return ex


def main():
    base = sys.argv[1]
    env = os.environ
    bot = client(base, env["MOCK_BOT_KEY"], env["MOCK_BOT_SECRET"])
    done = []

    markets = bot.load_markets()
    for s in ["BTC/USDT", "ETH/USDT", "TOKI/USDT", "MOCA/USDT"]:
        check(s in markets and markets[s]["spot"] and markets[s]["active"], "load_markets lists " + s)
    check(all(m["spot"] for m in markets.values()), "no derivatives markets")
    btc = markets["BTC/USDT"]
    check(btc["precision"]["price"] == 0.1 and btc["precision"]["amount"] == 0.000001,
          "precision from priceFilter and lotSizeFilter: %s" % btc["precision"])
    check(btc["limits"]["cost"]["min"] == 5, "minimum cost from minOrderAmt: %s" % btc["limits"])
    check("USDT" in bot.currencies and "TOKI" in bot.currencies, "currencies from coin/query-info")
    done.append("load_markets")

    bal = bot.fetch_balance()
    check(abs(bal["total"]["USDT"] - 5714.29) < 0.01, "USDT balance: %s" % bal["total"].get("USDT"))
    check(bal["total"]["BTC"] == 0.12, "BTC balance: %s" % bal["total"].get("BTC"))
    done.append("fetch_balance")

    last = bot.fetch_ticker("BTC/USDT")["last"]
    check(last and last > 0, "fetch_ticker has a last price")
    price = float(bot.price_to_precision("BTC/USDT", last * 0.8))
    limit = bot.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"clientOrderId": "ccxt-conf-1"})
    check(limit["id"] and limit["clientOrderId"] == "ccxt-conf-1", "limit order with its client id: %s" % limit)
    done.append("create_limit_order")

    one = bot.fetch_open_order(limit["id"], "BTC/USDT")
    check(one["status"] == "open" and one["price"] == price and one["amount"] == 0.001, "fetch_open_order: %s" % one)
    one = bot.fetch_order(limit["id"], "BTC/USDT", {"acknowledged": True})
    check(one["id"] == limit["id"] and one["status"] == "open", "fetch_order")
    opened = bot.fetch_open_orders("BTC/USDT")
    check([o["id"] for o in opened] == [limit["id"]], "fetch_open_orders shows the limit order")
    done.append("fetch_order")

    bot.cancel_order(limit["id"], "BTC/USDT")
    gone = bot.fetch_order(limit["id"], "BTC/USDT", {"acknowledged": True})
    check(gone["status"] == "canceled", "cancelled order is canceled: %s" % gone["status"])
    done.append("cancel_order")

    a = bot.create_order("BTC/USDT", "limit", "buy", 0.001, price)
    b = bot.create_order("BTC/USDT", "limit", "buy", 0.002, price)
    all_cancelled = bot.cancel_all_orders("BTC/USDT")
    check(sorted(o["id"] for o in all_cancelled) == sorted([a["id"], b["id"]]), "cancel_all_orders")
    check(bot.fetch_open_orders("BTC/USDT") == [], "nothing open after cancel_all_orders")
    done.append("cancel_all_orders")

    since = bot.milliseconds() - 60_000
    mkt = bot.create_market_buy_order_with_cost("TOKI/USDT", 20)
    closed = bot.fetch_closed_order(mkt["id"], "TOKI/USDT")
    check(closed["status"] == "closed", "market buy by cost is closed, got %s" % closed["status"])
    check(19.9 < closed["cost"] <= 20, "it spent the cost: %s" % closed["cost"])
    done.append("create_market_buy_order_with_cost")

    trades = bot.fetch_my_trades("TOKI/USDT", since)
    mine = [t for t in trades if t["order"] == mkt["id"]]
    check(len(mine) >= 1 and abs(sum(t["cost"] for t in mine) - closed["cost"]) < 1e-6, "fetch_my_trades: %s" % mine)
    # The venue charges fees in the quote coin (Bybit takes a buy's fee in the base coin);
    # ccxt infers the coin from the side, so read what the mock said.
    check(all(t["info"]["feeCurrency"] == "USDT" and t["fee"]["cost"] > 0 for t in mine), "fees in USDT")
    done.append("fetch_my_trades")

    closed_list = bot.fetch_closed_orders("TOKI/USDT", since)
    check([o["id"] for o in closed_list] == [mkt["id"]], "fetch_closed_orders lists the market buy")
    done.append("fetch_closed_orders")

    # A start alone opens a 30-day window: the funding deposit is 45 days old.
    day = 86_400_000
    check(bot.fetch_deposits() == [], "no deposit in the last 30 days")
    deposits = bot.fetch_deposits(None, bot.milliseconds() - 60 * day)
    check(any(d["currency"] == "USDT" and d["status"] == "ok" for d in deposits), "fetch_deposits: %s" % deposits)
    check(bot.fetch_withdrawals("BTC", bot.milliseconds() - 29 * 86_400_000) == [], "fetch_withdrawals")
    done.append("transfers")

    ro = client(base, env["MOCK_READONLY_KEY"], env["MOCK_READONLY_SECRET"])
    msg = refused(lambda: ro.create_order("BTC/USDT", "limit", "buy", 0.001, price),
                  ccxt.PermissionDenied, "a read-only key trading")
    check("10005" in msg, "read-only trading is 10005: " + msg)
    check(ro.fetch_balance()["total"]["USDT"] > 0, "a read-only key reads")
    done.append("read_only_refused_trading")

    wrong = client(base, env["MOCK_BOT_KEY"], "x" * 36)
    msg = refused(lambda: wrong.fetch_balance(), ccxt.AuthenticationError, "a wrong signature")
    check("10004" in msg, "wrong signature is 10004: " + msg)
    stranger = client(base, "A" * 18, env["MOCK_BOT_SECRET"])
    msg = refused(lambda: stranger.fetch_balance(), ccxt.AuthenticationError, "an unknown key")
    check("10003" in msg, "unknown key is 10003: " + msg)
    done.append("authentication_errors")

    hammer = client(base, env["MOCK_READONLY_KEY"], env["MOCK_READONLY_SECRET"])
    limited = None
    for _ in range(200):
        try:
            hammer.privateGetV5UserQueryApi()
        except ccxt.RateLimitExceeded as e:
            limited = (str(e), dict(hammer.last_response_headers or {}))
            break
    check(limited is not None, "10006 within 200 calls of a 10/s budget")
    headers = {k.lower(): v for k, v in limited[1].items()}
    check("10006" in limited[0], "10006: " + limited[0])
    check(headers.get("x-bapi-limit") == "10" and headers.get("x-bapi-limit-status") == "0",
          "limit headers on the refusal: %s" % headers)
    done.append("rate_limiting")

    attacker_key = env["MOCK_ATTACKER_KEY"]
    att = client(base, attacker_key, env["MOCK_ATTACKER_SECRET"])
    att.fetch_balance()
    req = urllib.request.Request("%s/_mock/keys/%s/revoke" % (base, attacker_key), method="POST")
    check(urllib.request.urlopen(req).status == 200, "revoke through the drill API")
    msg = refused(lambda: att.fetch_balance(), ccxt.AuthenticationError, "a revoked key")
    check("10003" in msg, "revoked key is 10003: " + msg)
    # The bot key deletes itself (it holds a transfer permission), and is refused after.
    deleted = bot.privatePostV5UserDeleteApi()
    check(deleted["retCode"] == 0 and deleted["result"] == {}, "delete-api: %s" % deleted)
    msg = refused(lambda: bot.fetch_balance(), ccxt.AuthenticationError, "a deleted key")
    check("10003" in msg, "deleted key is 10003: " + msg)
    done.append("revoked_key_refused")

    print(json.dumps({"ok": True, "checked": done, "ccxt": ccxt.__version__}))


if __name__ == "__main__":
    main()
