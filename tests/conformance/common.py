"""What the ccxt conformance scripts share: the check that ends a run with a JSON verdict,
the expected-refusal helper, and a ccxt client pointed at the mock."""
import json
import re
import sys

import ccxt


def check(cond, what):
    """Ends the run with `{"ok": false, "failed": what}` unless `cond`."""
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


def client(exchange_id, base, key, secret):
    """ccxt's `exchange_id` class with its default options, every API URL on `base`."""
    ex = getattr(ccxt, exchange_id)({"apiKey": key, "secret": secret, "enableRateLimit": False})
    ex.urls["api"] = {k: re.sub(r"^https://[^/]+", base, v) for k, v in ex.urls["api"].items()}
    return ex
