#!/usr/bin/env python3
"""test_status_page.py CHASH_PROXY - the stats port's status page (issue 19
part 5): `/` is one self-contained HTML page for a browser (Accept:
text/html; anything else still gets nutcracker's JSON), `/status.json` what
it draws beside `/stats` (each server's state as the workers see it, its
address, its share of the ring; warm-up; the last reload). Headless
Chromium renders it: the servers, a server marked down, the ownership ring,
and a picture that is not blank. Meanwhile a bystander on the pool sees no
error: the page is the stats thread's work, never a request's. Debian's
python3 (python3-pil for the picture).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander, check, check_eq, free_port, free_ports,  # noqa: E402
                     proxy_binary, run)

BIN = proxy_binary()


def get(port, path, accept=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def browser():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url, profile, *args):
    argv = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile, "--hide-scrollbars",
            "--virtual-time-budget=6000"] + list(args) + [url]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          timeout=120).stdout.decode("utf-8", "replace")


def test_status_page(env):
    r1, _ = env.redis()
    r2, _ = env.redis()
    dead = free_port()  # nothing listens: marked down
    mc, _ = env.memcached()
    la, lm, stats = free_ports(3)
    conf = ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash_tag: \"{}\"\n"
            "  on_failure: error\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n"
            "  servers:\n   - 127.0.0.1:%d:1 s1\n   - 127.0.0.1:%d:1 s2\n"
            "   - 127.0.0.1:%d:1 gone\n"
            "beta:\n  listen: 127.0.0.1:%d\n  distribution: jump\n  servers:\n"
            "   - 127.0.0.1:%d:1 m1\n" % (la, r1, r2, dead, lm, mc))
    env.proxy(BIN, conf, [la, lm], workers=2, stats_port=stats)
    c = Conn(la)
    tags = {}
    for i in range(300):
        owner = c.call("PROXY", "LOCATE", "{t%d}x" % i)[0][0].decode()
        tags.setdefault(owner, "t%d" % i)
    by = SetGetBystander(la, "page", tag=tags["s1"], max_wait=2.0)
    for i in range(200):
        c.call("SET", "k:%d" % i, "v")  # the dead server's keys fail, once each worker
    c.close()

    # nutcracker's JSON where it always was; the page for a browser.
    ctype, body = get(stats, "/")
    check(ctype.startswith("application/json") and json.loads(body)["service"] == "chash-proxy",
          "GET / without Accept: text/html is the JSON (%s)" % ctype)
    ctype, page = get(stats, "/", "text/html,application/xhtml+xml,*/*;q=0.8")
    check(ctype.startswith("text/html") and page.startswith("<!DOCTYPE html>"),
          "GET / from a browser is the page (%s)" % ctype)
    check_eq(get(stats, "/status")[1], page, "/status is the page too")
    external = re.findall(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//|@import|url\(", page)
    check_eq(external, [], "the page loads nothing from elsewhere")

    # The workers publish their view at their tick (100 ms).
    deadline = time.time() + 5
    while True:
        st = json.loads(get(stats, "/status.json")[1])
        pools = {p["name"]: p for p in st["pools"]}
        alpha = {s["name"]: s for s in pools["alpha"]["servers"]}
        if alpha["gone"]["state"] != "up" or time.time() > deadline:
            break
        time.sleep(0.05)
    check_eq(alpha["gone"]["state"], "down", "the dead server is down")
    check(alpha["gone"]["workers_out"] >= 1, "in the view of at least one worker")
    check_eq((alpha["s1"]["state"], alpha["s2"]["state"]), ("up", "up"), "the others are up")
    total = sum(s["share"] for s in alpha.values())
    check(abs(total - 1.0) < 1e-4, "the ketama shares sum to 1 (%f)" % total)
    check(all(0.2 < s["share"] < 0.5 for s in alpha.values()), "each a third or so: %r"
          % {n: s["share"] for n, s in alpha.items()})
    check_eq(alpha["s1"]["addr"], "127.0.0.1:%d" % r1, "addresses")
    check_eq([s["share"] for s in pools["beta"]["servers"]], [None],
             "jump has no exact ownership: null")
    print("  /status.json: shares %s" % {n: round(s["share"], 3) for n, s in alpha.items()})

    if not browser():
        raise AssertionError("chromium is not installed (Debian package chromium)")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=env.dir)
    url = "http://127.0.0.1:%d/status" % stats
    dom = chromium(url, profile, "--dump-dom")
    for what in ("alpha", "beta", "s1", "s2", "gone", "127.0.0.1:%d" % r1, "no exact ownership"):
        check(what in dom, "the rendered page shows %r" % what)
    check(re.search(r'class="st down"[^>]*>down<', dom), "the dead server drawn as down")
    check_eq(len(re.findall(r"<path ", dom)), 3, "the ring: one arc a server of alpha")
    shot = os.path.join(env.dir, "status.png")
    chromium(url, profile, "--window-size=1200,700", "--screenshot=" + shot)
    from PIL import Image
    im = Image.open(shot).convert("RGB")
    colours = im.getcolors(maxcolors=1 << 20)
    ink = sum(n for n, col in colours if col not in ((255, 255, 255), (244, 246, 248)))
    print("  screenshot: %dx%d, %d colours, %d%% ink" % (im.size[0], im.size[1], len(colours),
                                                        100 * ink // (im.size[0] * im.size[1])))
    check(len(colours) > 50 and ink > 0.05 * im.size[0] * im.size[1], "the picture is not blank")
    if os.environ.get("CHASH_STATUS_SHOT"):
        shutil.copy(shot, os.environ["CHASH_STATUS_SHOT"])
    by.done("(the page and its JSON read meanwhile)")


if __name__ == "__main__":
    run([test_status_page])
