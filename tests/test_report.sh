#!/usr/bin/env bash
# test_report.sh CHASH - `chash simulate --report/--svg`: the page and the SVG
# are well-formed XML, every figure in the page equals the --json figure of
# the same run, the page needs nothing from the network, a 1000-node report
# stays under 2 MB, and headless Chromium renders it to a picture that is not
# blank.
set -u
CHASH=${1:?usage: test_report.sh path/to/chash}
NAME=test_report
. "$(dirname "$0")/testlib.sh"

check_page() { # html json
    python3 - "$1" "$2" <<'EOF2'
import json, re, sys
import xml.etree.ElementTree as ET
html, js = sys.argv[1], sys.argv[2]
tree = ET.parse(html)  # well-formed, or this raises
ns = {"h": "http://www.w3.org/1999/xhtml", "s": "http://www.w3.org/2000/svg"}
root = tree.getroot()
data = json.load(open(js))
runs = {r["algo"]: r for r in data["results"]}
figs = [e for e in root.iter() if e.get("data-key")]
assert len(figs) >= 3 * len(runs), len(figs)
for e in figs:
    key, value = e.get("data-key"), float(e.get("data-value"))
    if key == "ideal_moved_fraction":
        want = data["ideal_moved_fraction"]
    elif key.startswith("first."):
        want = data["results"][0][key.split(".", 1)[1]]
    else:
        algo, field = key.split(".", 1)
        want = runs[algo][field]
    assert abs(value - want) < 1e-6, (key, value, want)
    # The visible text is the same number, rounded.
    shown = float(re.sub(r"[^0-9.]", "", "".join(e.itertext())))
    scale = 100 if "fraction" in key else 1
    assert abs(shown - want * scale) <= 0.0051, (key, shown, want)  # rounded to 2+ decimals
# The embedded data block is the same JSON document.
block = [e for e in root.iter() if e.get("id") == "chash-data"][0]
assert json.loads(block.text) == data
svgs = list(root.iter("{http://www.w3.org/2000/svg}svg"))
assert len(svgs) >= 3, len(svgs)
# Self-contained: no external references of any kind.
text = open(html).read()
assert not re.search(r"(src|href)\s*=\s*[\"'](https?:)?//", text), "external reference"
assert "<script src" not in text and "@import" not in text
print("page ok:", len(figs), "figures,", len(svgs), "charts")
EOF2
}

args=(--keys 200000 --seed 3)
"$CHASH" simulate "${args[@]}" --report "$TMP/r.html" --svg "$TMP/r.svg" >/dev/null 2>"$TMP/err" && ok || bad "simulate --report: $(cat "$TMP/err")"
"$CHASH" simulate "${args[@]}" --json >"$TMP/r.json" && ok || bad "simulate --json"
check_page "$TMP/r.html" "$TMP/r.json" && ok || bad "report figures = --json figures"
python3 -c "import sys, xml.etree.ElementTree as ET; r = ET.parse(sys.argv[1]).getroot(); assert r.tag.endswith('svg') and len(list(r.iter())) > 100" "$TMP/r.svg" &&
    ok || bad "--svg is a well-formed SVG with the ring"
grep -q 'all of them to the new node' "$TMP/r.html" && ok || bad "summary says where keys go"

# Removal, several algorithms, weights and binary-looking names still parse.
printf 'a<b 2\nc&d 1\ne"f 1\ng 3\n' >"$TMP/nodes"
"$CHASH" simulate --nodes-file "$TMP/nodes" --remove 1 --keys 50000 --report "$TMP/w.html" >/dev/null &&
    "$CHASH" simulate --nodes-file "$TMP/nodes" --remove 1 --keys 50000 --json >"$TMP/w.json" &&
    check_page "$TMP/w.html" "$TMP/w.json" && ok || bad "report with odd names and a removal"

# Size: 1000 nodes x 160 points are drawn aggregated.
"$CHASH" simulate --nodes 1000 --keys 100000 --report "$TMP/big.html" >/dev/null && ok || bad "1000-node report"
size=$(stat -c %s "$TMP/big.html")
[ "$size" -le 2000000 ] && ok || bad "1000-node report is $size bytes (> 2 MB)"

# Errors: an unwritable path fails cleanly; --svg needs the ring.
"$CHASH" simulate --keys 1000 --report /nonexistent/dir/r.html >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q 'report' "$TMP/err" && ok || bad "unwritable --report exits 1"
"$CHASH" simulate --keys 1000 --algo modulo --svg "$TMP/x.svg" >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && ok || bad "--svg without the ring exits 2"

# Progress: on a terminal for long runs, never into pipes or with --quiet.
"$CHASH" simulate --keys 8000000 --json >/dev/null 2>"$TMP/piped"
[ $? -eq 0 ] && [ ! -s "$TMP/piped" ] && ok || bad "no progress when stderr is not a terminal"
if command -v script >/dev/null; then
    script -qec "$CHASH simulate --keys 20000000 --algo ring >/dev/null" /dev/null >"$TMP/tty" 2>&1
    grep -q 'hashed [0-9]* / 20000000 keys' "$TMP/tty" && ok || bad "progress shown on a terminal: $(head -c 300 "$TMP/tty")"
    # The run's exit code is echoed, so a run that never happened cannot pass.
    script -qec "$CHASH simulate --keys 20000000 --algo ring --quiet >/dev/null; echo ran:\$?" \
        /dev/null >"$TMP/tty_quiet" 2>&1
    grep -q 'ran:0' "$TMP/tty_quiet" && ! grep -q 'hashed' "$TMP/tty_quiet" && ok ||
        bad "--quiet silences progress: $(head -c 300 "$TMP/tty_quiet")"
else
    skip "no script(1) (bsdutils): progress on a terminal is unchecked"
fi

# The browser: headless Chromium renders the page; the picture is not blank.
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    bad "chromium is not installed (Debian package chromium)"
else
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$TMP/profile" --hide-scrollbars --window-size=1000,1600 \
        --screenshot="$TMP/shot.png" "file://$TMP/r.html" >/dev/null 2>&1
    # Debian's python3 (which has python3-pil), whatever python3 is first on PATH.
    /usr/bin/python3 - "$TMP/shot.png" <<'EOF2' && ok || bad "screenshot is blank or missing"
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
w, h = im.size
assert w >= 900 and h >= 1000, im.size
colours = im.getcolors(maxcolors=1 << 20)
non_white = sum(n for n, c in colours if c != (255, 255, 255))
assert len(colours) > 50 and non_white > 0.05 * w * h, (len(colours), non_white)
print("screenshot ok:", len(colours), "colours,", round(100 * non_white / (w * h)), "% ink")
EOF2
fi

finish
