"""A workload Pod's program (run as ``python -c`` in the product image): route, then call.

With MODE=proxy it holds no provider key and calls the router's OpenAI-compatible paths
instead (``POST ROUTER/proxy/NAMESPACE/POLICY/v1/chat/completions``, then the unprefixed
``/v1/chat/completions``, which serves the caller's namespace's default policy): the router
picks the provider, calls it with the key from its Secret and reports the outcome itself.

Why in a Pod: the point is what an in-cluster service sees, so this runs where one does,
behind the node's pod network, and asks the router over its ClusterIP Service. Each attempt
asks ``GET /v1/route`` and then POSTs a chat completion to the chosen provider's ``apiBase``,
then reports the outcome (``POST /v1/report`` with the route's lease, as the client library
does), and prints one JSON line: ``{"t": unix time, "ok": bool, "provider": ..., "error": ...}``.

Environment: ROUTER (http://ip:port), POLICY, NAMESPACE, DURATION (seconds; 0 = one successful
attempt, retried until TIMEOUT), INTERVAL (seconds between attempts), TIMEOUT (per call),
TOKEN_FILE (the projected ServiceAccount token for the router's audience, sent as a Bearer
token when present: the chart checks callers by default).
Standard library only; every call has a timeout and the whole run is bounded.
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

ROUTER = os.environ["ROUTER"]
POLICY = os.environ.get("POLICY", "")
NAMESPACE = os.environ.get("NAMESPACE", "")
DURATION = float(os.environ.get("DURATION", "0"))
INTERVAL = float(os.environ.get("INTERVAL", "0.2"))
TIMEOUT = float(os.environ.get("TIMEOUT", "2"))
GIVE_UP = float(os.environ.get("GIVE_UP", "120"))
MODE = os.environ.get("MODE", "route")
TOKEN_FILE = os.environ.get("TOKEN_FILE", "/var/run/secrets/provider-router/token")


def auth() -> dict[str, str]:
    """The caller's identity, read on every call (the kubelet rotates the file)."""
    try:
        with open(TOKEN_FILE) as handle:
            token = handle.read().strip()
    except OSError:
        return {}
    return {"Authorization": f"Bearer {token}"} if token else {}


def report(route: dict[str, object], outcome: str, called: float) -> bool:
    """POST /v1/report for the route's lease, as a well-behaved client does: the router frees
    the lease and counts the outcome (a half-open circuit's trial ends with it)."""
    lease = route.get("leaseId")
    if not lease:
        return False
    body = json.dumps({"leaseId": lease, "outcome": outcome,
                       "latencyMs": round((time.time() - called) * 1000, 1)}).encode()
    request = urllib.request.Request(f"{ROUTER}/v1/report", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **auth()})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return bool(200 <= response.status < 300)
    except Exception:
        return False


def attempt() -> dict[str, object]:
    query = urllib.parse.urlencode({"policy": POLICY, "namespace": NAMESPACE})
    started = time.time()
    try:
        asked = urllib.request.Request(f"{ROUTER}/v1/route?{query}", headers=auth())
        with urllib.request.urlopen(asked, timeout=TIMEOUT) as response:
            route = json.load(response)
        provider = route["provider"]
        body = json.dumps({"model": provider.get("model") or "mock-model",
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        request = urllib.request.Request(
            provider["apiBase"].rstrip("/") + "/chat/completions", data=body,
            headers={"Content-Type": "application/json"}, method="POST")
        called = time.time()
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                answer = json.load(response)
        except Exception:
            report(route, "error", called)
            raise
        reported = report(route, "success", called)
        return {"t": started, "ok": True, "provider": provider["name"], "reported": reported,
                "apiBase": provider["apiBase"],
                "content": answer["choices"][0]["message"]["content"]}
    except urllib.error.HTTPError as err:  # the router's JSON error says why
        detail = err.read().decode(errors="replace")
        return {"t": started, "ok": False, "error": f"HTTP {err.code}: {detail}"[:400]}
    except Exception as err:  # every failure is data for the test
        return {"t": started, "ok": False, "error": f"{type(err).__name__}: {err}"[:300]}


def proxied() -> dict[str, object]:
    """A chat completion through the router's proxy path for the policy, then one through
    the unprefixed path (the default policy of the caller's namespace), with only the
    caller's token; ok when both are."""
    named = proxied_call(f"/proxy/{NAMESPACE}/{POLICY}/v1/chat/completions")
    if not named["ok"]:
        return named
    unprefixed = proxied_call("/v1/chat/completions")
    return {**named, "ok": unprefixed["ok"], "unprefixed": unprefixed}


def proxied_call(path: str) -> dict[str, object]:
    started = time.time()
    body = json.dumps({"model": "mock-model",
                       "messages": [{"role": "user", "content": "hello"}]}).encode()
    request = urllib.request.Request(
        f"{ROUTER}{path}", data=body, method="POST",
        headers={"Content-Type": "application/json", **auth()})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer = json.load(response)
            provider = response.headers.get("x-router-provider", "")
            policy = response.headers.get("x-router-policy", "")
        return {"t": started, "ok": True, "provider": provider, "policy": policy,
                "content": answer["choices"][0]["message"]["content"],
                "usage": answer.get("usage")}
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        return {"t": started, "ok": False, "error": f"HTTP {err.code}: {detail}"[:400]}
    except Exception as err:
        return {"t": started, "ok": False, "error": f"{type(err).__name__}: {err}"[:300]}


def main() -> None:
    begin = time.time()
    while True:
        result = proxied() if MODE == "proxy" else attempt()
        print(json.dumps(result), flush=True)
        elapsed = time.time() - begin
        if DURATION <= 0 and (result["ok"] or elapsed > GIVE_UP):
            break
        if DURATION > 0 and elapsed >= DURATION:
            break
        time.sleep(INTERVAL)
    print(json.dumps({"done": True, "t": time.time()}), flush=True)


main()
