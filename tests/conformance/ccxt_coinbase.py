"""Drive the mock exchange with ccxt's `coinbase` class (Advanced Trade): an independent client.

Usage: ccxt_coinbase.py BASE_URL
Keys come from the environment, never argv: MOCK_BOT_KEY/MOCK_BOT_SECRET (a CDP key name and
its P-256 private key PEM; can view, trade and transfer), MOCK_READONLY_KEY/MOCK_READONLY_SECRET
(view only), MOCK_ATTACKER_KEY/MOCK_ATTACKER_SECRET. ccxt runs with its default options (it
signs ES256 JWTs for such keys, reads balances from the App API's /v2/accounts, and loads the
currencies from /v2): only its URLs point at the mock. Prints one JSON line with what it
checked; exits 1 on the first failed check.
"""
import json
import os
import sys
import urllib.request

import ccxt

import common
from common import check, refused


def client(base, key, secret, like=None):
    """A client; with `like`, it takes that client's markets instead of loading them (the
    public endpoints allow 10 requests per second per IP, and loading takes five)."""
    ex = common.client("coinbase", base, key, secret)
    if like is not None:
        ex.set_markets(like.markets, like.currencies)
    return ex


def main():
    base = sys.argv[1]
    env = os.environ
    bot = client(base, env["MOCK_BOT_KEY"], env["MOCK_BOT_SECRET"])
    done = []

    markets = bot.load_markets()
    for s in ["BTC/USD", "ETH/USD", "TOKI/USD", "MOCA/USD"]:
        check(s in markets and markets[s]["spot"] and markets[s]["active"], "load_markets lists " + s)
    btc = markets["BTC/USD"]
    check(btc["precision"]["amount"] == 0.00000001 and btc["precision"]["price"] == 0.1,
          "precision from base_increment and price_increment: %s" % btc["precision"])
    check(btc["limits"]["cost"]["min"] == 1, "minimum cost from quote_min_size: %s" % btc["limits"])
    check("USD" in bot.currencies and "TOKI" in bot.currencies, "currencies from /v2/currencies")
    done.append("load_markets")

    bal = bot.fetch_balance()
    check(abs(bal["total"]["USD"] - 5714.29) < 0.01, "USD balance: %s" % bal["total"].get("USD"))
    check(bal["total"]["BTC"] == 0.12, "BTC balance: %s" % bal["total"].get("BTC"))
    v3 = bot.fetch_balance({"v3": True})
    check(v3["total"]["BTC"] == 0.12 and v3["free"]["BTC"] == 0.12, "v3 accounts balance: %s" % v3["total"])
    done.append("fetch_balance")

    last = bot.fetch_ticker("BTC/USD")["last"]
    check(last and last > 0, "fetch_ticker has a last price")
    price = float(bot.price_to_precision("BTC/USD", last * 0.8))
    limit = bot.create_order("BTC/USD", "limit", "buy", 0.001, price, {"client_order_id": "ccxt-conf-1"})
    check(limit["id"], "limit order: %s" % limit)
    done.append("create_limit_order")

    one = bot.fetch_order(limit["id"], "BTC/USD")
    check(one["id"] == limit["id"] and one["status"] == "open" and one["price"] == price
          and one["amount"] == 0.001 and one["clientOrderId"] == "ccxt-conf-1", "fetch_order: %s" % one)
    opened = bot.fetch_open_orders("BTC/USD")
    check([o["id"] for o in opened] == [limit["id"]], "fetch_open_orders shows the limit order")
    done.append("fetch_order")

    bot.cancel_order(limit["id"], "BTC/USD")
    gone = bot.fetch_order(limit["id"], "BTC/USD")
    check(gone["status"] == "canceled", "cancelled order is canceled: %s" % gone["status"])
    done.append("cancel_order")

    # ccxt's coinbase has no cancel_all_orders: list what is open and cancel it in one batch.
    a = bot.create_order("BTC/USD", "limit", "buy", 0.001, price)
    b = bot.create_order("BTC/USD", "limit", "buy", 0.002, price)
    ids = sorted(o["id"] for o in bot.fetch_open_orders("BTC/USD"))
    check(ids == sorted([a["id"], b["id"]]), "both open: %s" % ids)
    bot.cancel_orders(ids)
    check(bot.fetch_open_orders("BTC/USD") == [], "nothing open after the batch cancel")
    done.append("cancel_all_orders")

    since = bot.milliseconds() - 60_000
    mkt = bot.create_market_buy_order_with_cost("TOKI/USD", 20)
    closed = bot.fetch_order(mkt["id"], "TOKI/USD")
    check(closed["status"] == "closed", "market buy by cost is closed, got %s" % closed["status"])
    check(19.9 < closed["cost"] <= 20, "it spent the cost: %s" % closed["cost"])
    done.append("create_market_buy_order_with_cost")

    trades = bot.fetch_my_trades("TOKI/USD", since)
    mine = [t for t in trades if t["order"] == mkt["id"]]
    check(len(mine) >= 1 and abs(sum(t["cost"] for t in mine) - closed["cost"]) < 1e-6, "fetch_my_trades: %s" % mine)
    check(all(t["fee"]["cost"] > 0 for t in mine), "fills carry their commission: %s" % mine)
    done.append("fetch_my_trades")

    closed_list = bot.fetch_closed_orders("TOKI/USD", since)
    check([o["id"] for o in closed_list] == [mkt["id"]], "fetch_closed_orders lists the market buy")
    done.append("fetch_closed_orders")

    deposits = bot.fetch_deposits("USD", None, None, {"currencyType": "crypto"})
    check(any(d["currency"] == "USD" and d["amount"] > 0 for d in deposits), "fetch_deposits: %s" % deposits)
    check(bot.fetch_withdrawals("BTC", None, None, {"currencyType": "crypto"}) == [], "fetch_withdrawals")
    done.append("transfers")

    ro = client(base, env["MOCK_READONLY_KEY"], env["MOCK_READONLY_SECRET"], bot)
    msg = refused(lambda: ro.create_order("BTC/USD", "limit", "buy", 0.001, price),
                  ccxt.PermissionDenied, "a view-only key trading")
    check("PERMISSION_DENIED" in msg, "view-only trading is PERMISSION_DENIED: " + msg)
    check(ro.fetch_balance()["total"]["USD"] > 0, "a view-only key reads")
    done.append("read_only_refused_trading")

    wrong = client(base, env["MOCK_BOT_KEY"], env["MOCK_ATTACKER_SECRET"], bot)
    refused(lambda: wrong.fetch_balance(), ccxt.AuthenticationError, "a wrong signature")
    name = env["MOCK_BOT_KEY"].rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    stranger = client(base, name, env["MOCK_BOT_SECRET"], bot)
    refused(lambda: stranger.fetch_balance(), ccxt.AuthenticationError, "an unknown key")
    done.append("authentication_errors")

    hammer = client(base, env["MOCK_READONLY_KEY"], env["MOCK_READONLY_SECRET"], bot)
    limited = None
    for _ in range(200):
        try:
            hammer.v3PrivateGetBrokerageKeyPermissions()
        except ccxt.RateLimitExceeded as e:
            limited = (str(e), dict(hammer.last_response_headers or {}))
            break
    check(limited is not None, "429 within 200 calls of a 30/s budget")
    headers = {k.lower(): v for k, v in limited[1].items()}
    check(headers.get("x-ratelimit-limit") == "30" and headers.get("x-ratelimit-remaining") == "0",
          "limit headers on the refusal: %s" % headers)
    done.append("rate_limiting")

    attacker_key = env["MOCK_ATTACKER_KEY"]
    att = client(base, attacker_key, env["MOCK_ATTACKER_SECRET"], bot)
    att.fetch_balance()
    req = urllib.request.Request("%s/_mock/keys/%s/revoke" % (base, attacker_key), method="POST")
    check(urllib.request.urlopen(req).status == 200, "revoke through the drill API")
    refused(lambda: att.fetch_balance(), ccxt.AuthenticationError, "a revoked key")
    done.append("revoked_key_refused")

    print(json.dumps({"ok": True, "checked": done, "ccxt": ccxt.__version__}))


if __name__ == "__main__":
    main()
