"""Drive the mock exchange with ccxt's `kucoin` class: an independent client.

Usage: ccxt_kucoin.py BASE_URL
Keys come from the environment, never argv: MOCK_BOT_KEY/MOCK_BOT_SECRET/MOCK_BOT_PASSPHRASE
(can trade), MOCK_READONLY_KEY/…/MOCK_READONLY_PASSPHRASE, MOCK_ATTACKER_KEY/…. ccxt runs
with its default options (it loads spot and contract markets, the margin symbols and the
currencies with a key, and asks whether the account is unified and high-frequency): only its
URLs point at the mock. Prints one JSON line with what it checked; exits 1 on the first
failed check.
"""
import json
import os
import sys
import urllib.request

import ccxt

import common
from common import check, refused


def client(base, key, secret, passphrase):
    ex = common.client("kucoin", base, key, secret)
    ex.password = passphrase
    return ex


def keys(label):
    env = os.environ
    return (env["MOCK_%s_KEY" % label], env["MOCK_%s_SECRET" % label],
            env["MOCK_%s_PASSPHRASE" % label])


def main():
    base = sys.argv[1]
    bot = client(base, *keys("BOT"))
    done = []

    markets = bot.load_markets()
    for s in ["BTC/USDT", "ETH/USDT", "TOKI/USDT", "MOCA/USDT"]:
        check(s in markets and markets[s]["spot"] and markets[s]["active"], "load_markets lists " + s)
    check(all(m["spot"] for m in markets.values()), "no contract markets")
    btc = markets["BTC/USDT"]
    check(btc["id"] == "BTC-USDT", "dash-separated ids: %s" % btc["id"])
    check(btc["precision"]["price"] == 0.1 and btc["precision"]["amount"] == 0.000001,
          "precision from priceIncrement and baseIncrement: %s" % btc["precision"])
    check(btc["limits"]["cost"]["min"] == 1, "minimum cost from minFunds: %s" % btc["limits"])
    check(bot.options.get("hf") is True, "hf/accounts/opened says high-frequency")
    done.append("load_markets")

    currencies = bot.fetch_currencies()
    check("USDT" in currencies and "TOKI" in currencies, "currencies from /api/v3/currencies")
    check(currencies["TOKI"]["networks"], "each currency has a chain: %s" % currencies["TOKI"])
    done.append("fetch_currencies")

    bal = bot.fetch_balance()
    check(abs(bal["total"]["USDT"] - 5714.29) < 0.01, "USDT balance: %s" % bal["total"].get("USDT"))
    check(bal["total"]["BTC"] == 0.12, "BTC balance: %s" % bal["total"].get("BTC"))
    done.append("fetch_balance")

    last = bot.fetch_ticker("BTC/USDT")["last"]
    check(last and last > 0, "fetch_ticker has a last price")
    price = float(bot.price_to_precision("BTC/USDT", last * 0.8))
    limit = bot.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"clientOrderId": "ccxt-conf-1"})
    check(limit["id"], "limit order: %s" % limit)
    done.append("create_limit_order")

    one = bot.fetch_order(limit["id"], "BTC/USDT")
    check(one["id"] == limit["id"] and one["status"] == "open" and one["price"] == price
          and one["amount"] == 0.001 and one["clientOrderId"] == "ccxt-conf-1", "fetch_order: %s" % one)
    opened = bot.fetch_open_orders("BTC/USDT")
    check([o["id"] for o in opened] == [limit["id"]], "fetch_open_orders shows the limit order")
    done.append("fetch_order")

    bot.cancel_order(limit["id"], "BTC/USDT")
    gone = bot.fetch_order(limit["id"], "BTC/USDT")
    check(gone["status"] == "canceled", "cancelled order is canceled: %s" % gone["status"])
    done.append("cancel_order")

    bot.create_order("BTC/USDT", "limit", "buy", 0.001, price)
    bot.create_order("ETH/USDT", "limit", "sell", 0.01, float(bot.price_to_precision(
        "ETH/USDT", bot.fetch_ticker("ETH/USDT")["last"] * 1.5)))
    bot.cancel_all_orders()
    check(bot.fetch_open_orders("BTC/USDT") == [] and bot.fetch_open_orders("ETH/USDT") == [],
          "nothing open after cancel_all_orders")
    stop = bot.create_order("BTC/USDT", "limit", "sell", 0.001, price, {"triggerPrice": price, "stop": "loss"})
    check(stop["id"], "stop order: %s" % stop)
    stops = bot.fetch_open_orders("BTC/USDT", None, None, {"trigger": True})
    check([o["id"] for o in stops] == [stop["id"]], "fetch_open_orders(trigger) lists it: %s" % stops)
    bot.cancel_all_orders("BTC/USDT", {"trigger": True})
    check(bot.fetch_open_orders("BTC/USDT", None, None, {"trigger": True}) == [], "stop orders cancelled")
    done.append("cancel_all_orders")

    since = bot.milliseconds() - 60_000
    mkt = bot.create_market_buy_order_with_cost("TOKI/USDT", 20)
    closed = bot.fetch_order(mkt["id"], "TOKI/USDT")
    check(closed["status"] == "closed", "market buy by cost is closed, got %s" % closed["status"])
    check(19.9 < closed["cost"] <= 20, "it spent the cost: %s" % closed["cost"])
    done.append("create_market_buy_order_with_cost")

    trades = bot.fetch_my_trades("TOKI/USDT", since)
    mine = [t for t in trades if t["order"] == mkt["id"]]
    check(len(mine) >= 1 and abs(sum(t["cost"] for t in mine) - closed["cost"]) < 1e-6, "fetch_my_trades: %s" % mine)
    check(all(t["fee"]["currency"] == "USDT" and t["fee"]["cost"] > 0 for t in mine), "fees in USDT")
    done.append("fetch_my_trades")

    closed_list = bot.fetch_closed_orders("TOKI/USDT", since)
    check([o["id"] for o in closed_list] == [mkt["id"]], "fetch_closed_orders lists the market buy")
    done.append("fetch_closed_orders")

    day = 86_400_000
    deposits = bot.fetch_deposits()
    check(any(d["currency"] == "USDT" and d["status"] == "ok" for d in deposits), "fetch_deposits: %s" % deposits)
    check(bot.fetch_withdrawals("BTC", bot.milliseconds() - 29 * day) == [], "fetch_withdrawals")
    done.append("transfers")

    ro = client(base, *keys("READONLY"))
    msg = refused(lambda: ro.create_order("BTC/USDT", "limit", "buy", 0.001, price),
                  ccxt.AuthenticationError, "a read-only key trading")
    check("400007" in msg, "read-only trading is 400007: " + msg)
    check(ro.fetch_balance()["total"]["USDT"] > 0, "a read-only key reads")
    done.append("read_only_refused_trading")

    key, secret, passphrase = keys("BOT")
    wrong = client(base, key, "x" * 36, passphrase)
    # The passphrase header is signed with the secret too: a wrong secret fails it first.
    msg = refused(lambda: wrong.fetch_balance(), ccxt.AuthenticationError, "a wrong secret")
    check("400004" in msg, "wrong secret is 400004 (passphrase checked first): " + msg)
    bad_pass = client(base, key, secret, "not-the-passphrase")
    msg = refused(lambda: bad_pass.fetch_balance(), ccxt.AuthenticationError, "a wrong passphrase")
    check("400004" in msg, "wrong passphrase is 400004: " + msg)
    forged = client(base, key, secret, passphrase)
    forged.load_markets()
    real_sign = forged.sign

    def tampered(*a, **kw):
        out = real_sign(*a, **kw)
        if out.get("headers") and "KC-API-SIGN" in out["headers"]:
            out["headers"]["KC-API-SIGN"] = "A" * 44
        return out

    forged.sign = tampered
    msg = refused(lambda: forged.fetch_balance(), ccxt.AuthenticationError, "a wrong signature")
    check("400005" in msg, "wrong signature is 400005: " + msg)
    stranger = client(base, "A" * 24, secret, passphrase)
    msg = refused(lambda: stranger.fetch_balance(), ccxt.AuthenticationError, "an unknown key")
    check("400003" in msg, "unknown key is 400003: " + msg)
    done.append("authentication_errors")

    hammer = client(base, *keys("READONLY"))
    limited = None
    for _ in range(200):
        try:
            hammer.privateGetUserApiKey()
        except ccxt.RateLimitExceeded as e:
            limited = (str(e), dict(hammer.last_response_headers or {}))
            break
    check(limited is not None, "429000 within 200 calls of weight 20 on a 2000 pool")
    headers = {k.lower(): v for k, v in limited[1].items()}
    check("429000" in limited[0], "429000: " + limited[0])
    check(headers.get("gw-ratelimit-limit") == "2000" and int(headers.get("gw-ratelimit-remaining")) < 20,
          "pool headers on the refusal: %s" % headers)
    done.append("rate_limiting")

    attacker_key = keys("ATTACKER")[0]
    att = client(base, *keys("ATTACKER"))
    att.fetch_balance()
    req = urllib.request.Request("%s/_mock/keys/%s/revoke" % (base, attacker_key), method="POST")
    check(urllib.request.urlopen(req).status == 200, "revoke through the drill API")
    msg = refused(lambda: att.fetch_balance(), ccxt.AuthenticationError, "a revoked key")
    check("400003" in msg, "revoked key is 400003: " + msg)
    done.append("revoked_key_refused")

    print(json.dumps({"ok": True, "checked": done, "ccxt": ccxt.__version__}))


if __name__ == "__main__":
    main()
