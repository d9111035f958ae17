#!/usr/bin/env python3
"""manpages.py - chash(1), chash-proxy(8) and libchash(3), written from what
the programs and the header already say, so a page cannot drift from them:

  chash.1        `chash --help` and each `chash COMMAND --help`
  chash-proxy.8  `chash-proxy --help` (every option) and `chash-proxy
                 --config-keys` (every configuration key: the table the -t
                 checker reads)
  libchash.3     include/chash.h: its opening comment, and each function's
                 prototype with the comment above it

usage: manpages.py --chash BIN [--proxy BIN] --header chash.h --version V --out DIR
"""
import argparse
import os
import re
import subprocess
import sys
import time

# The pages' date: SOURCE_DATE_EPOCH's (reproducible builds), else today.
DATE = time.strftime("%Y-%m-%d", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH",
                                                                 time.time()))))


def esc(text):
    """Text as roff reads it: backslashes escaped, no line taken for a
    request, hyphens of options kept as hyphens."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + ln) if ln[:1] in (".", "'") else ln for ln in text.split("\n"))


def inline(md):
    """A markdown cell's text: `code` bold, the rest escaped."""
    out = []
    for i, part in enumerate(md.split("`")):
        out.append(("\\fB%s\\fR" % esc(part)) if i % 2 else esc(part))
    return "".join(out).replace("\\\\|", "|")


def run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return r.stdout.decode()


def header(name, section, title):
    return ('.TH "%s" "%s" "%s" "chash %s" "%s"\n'
            % (name.upper(), section, DATE, ARGS.version, title))


def preformatted(text):
    """A help text as it prints, in a fixed-width block."""
    return ".PP\n.nf\n.RS 2\n%s\n.RE\n.fi\n" % esc(text.rstrip("\n"))


def options_tp(lines):
    """The `  -x, --long ARG   text` lines of a --help as tagged
    paragraphs; a line indented past the option column continues the text."""
    out, tag, body = [], None, []

    def flush():
        if tag is not None:
            out.append(".TP\n.B %s\n%s\n" % (esc(tag), esc(" ".join(body))))
    for ln in lines:
        m = re.match(r"^ {2,6}(-\S.*?)(?:\s{2,}(.*))?$", ln)
        if m:
            flush()
            tag, body = m.group(1).strip(), [m.group(2) or ""]
        elif tag is not None and ln.strip():
            body.append(ln.strip())
    flush()
    return "".join(out)


def chash_page():
    top = run([ARGS.chash, "--help"])
    commands = re.findall(r"^  (\w+)\s{2,}(.*)$", top, re.M)
    lines = top.split("\n")
    summary = next(ln for ln in lines if ln and not ln.startswith("usage"))
    page = [header("chash", "1", "User Commands"),
            ".SH NAME\nchash \\- %s\n" % esc(summary.rstrip(".").lower()),
            ".SH SYNOPSIS\n.B chash\n.I COMMAND\n[\\fIOPTIONS\\fR]\n.br\n"
            ".B chash\n.I COMMAND\n.B \\-\\-help\n.br\n"
            ".B chash \\-\\-version\n",
            ".SH DESCRIPTION\n%s\n" % esc(summary),
            ".SH COMMANDS\n"]
    for name, what in commands:
        page.append(".SS %s\n%s\n" % (esc(name), esc(what)))
        page.append(preformatted(run([ARGS.chash, name, "--help"])))
    page.append(".SH EXIT STATUS\n0 on success; 2 for a usage error; 1 for any other "
                "failure, said on standard error.\n")
    page.append(".SH SEE ALSO\n.BR chash\\-proxy (8),\n.BR libchash (3)\n")
    return "".join(page)


def key_table():
    """The rows of `chash-proxy --config-keys`: (key, values, default,
    protocol, origin, meaning), markdown cells."""
    rows = []
    for ln in run([ARGS.proxy, "--config-keys"]).split("\n"):
        if not ln.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", ln.strip().strip("|"))]
        rows.append(cells)
    return rows


def proxy_page():
    text = run([ARGS.proxy, "--help"])
    lines = text.split("\n")
    usage = []
    for ln in lines:
        if ln.startswith("usage:") or (usage and ln.startswith(" ")):
            usage.append(ln.replace("usage: ", "", 1).strip())
        elif usage:
            break
    desc = []
    i = len(usage)
    while i < len(lines) and not lines[i].endswith(":"):
        desc.append(lines[i].strip())
        i += 1
    page = [header("chash-proxy", "8", "System Administration"),
            ".SH NAME\nchash\\-proxy \\- a Redis and memcached sharding proxy\n",
            ".SH SYNOPSIS\n.nf\n%s\n.fi\n" % esc("\n".join(usage)),
            ".SH DESCRIPTION\n%s\n" % esc(" ".join(d for d in desc if d))]
    # Each "heading:" of the help, its options as tagged paragraphs.
    section, block = None, []
    for ln in lines[i:] + ["end:"]:
        if ln and not ln.startswith(" ") and ln.rstrip().endswith(":") or ln == "end:":
            if section is not None:
                page.append(".SH %s\n%s" % (esc(section.split(" (")[0].upper()), options_tp(block)))
            section, block = ln.rstrip(":").strip(), []
        elif ln.startswith(" "):
            block.append(ln)
        elif ln.strip() and section is not None:
            block.append("   " + ln)  # a closing sentence: kept with the last option
    page.append(".SH CONFIGURATION\nThe configuration is nutcracker's YAML: a map of pools, "
                "each a map of the keys below. Unknown keys and bad values stop the load "
                "with FILE:LINE and exit status 2 (\\fB\\-t\\fR checks a file).\n")
    for key, values, default, proto, origin, meaning in key_table():
        page.append(".TP\n%s\n%s.\n.br\nValues: %s. Default: %s. Protocol: %s (%s).\n"
                    % (inline(key), inline(meaning), inline(values), inline(default),
                       esc(proto), esc(origin)))
    page.append(".SH SIGNALS\n.TP\n.B SIGHUP\nreload the configuration (and the TLS files it "
                "names) when any of them changed.\n.TP\n.B SIGTERM, SIGINT\nstop accepting, "
                "answer what clients asked, exit; a second one exits at once.\n")
    page.append(".SH EXIT STATUS\n0 after a clean stop or a good \\fB\\-t\\fR; 2 for a usage "
                "or configuration error; 1 when it cannot start.\n")
    page.append(".SH SEE ALSO\n.BR chash (1),\n.BR libchash (3),\n.BR redis\\-server (1),\n"
                ".BR nutcracker (8)\n")
    return "".join(page)


def comment_text(block):
    """A C comment's text, its leading stars gone."""
    body = block.strip()[2:-2]
    out = []
    for ln in body.split("\n"):
        ln = re.sub(r"^\s*\* ?", "", ln)
        out.append(ln.rstrip())
    out[0] = out[0].lstrip()  # "/* text": the space after the opening
    return "\n".join(out).strip("\n")


def library_page():
    src = open(ARGS.header).read()
    first = re.match(r"\s*(/\*.*?\*/)", src, re.S)
    intro = comment_text(first.group(1))
    # Each prototype with the comment right above it.
    items = []
    for m in re.finditer(r"(/\*(?:(?!\*/).)*\*/)\s*\n((?:CHASH_API[^;]*;\s*\n?)+)", src, re.S):
        items.append((comment_text(m.group(1)), m.group(2).strip()))
    abi = re.search(r"(/\*\s*\n \* Versions and the ABI promise\..*?\*/)", src, re.S)
    page = [header("libchash", "3", "Library Functions Manual"),
            ".SH NAME\nlibchash \\- consistent hashing: the virtual\\-node CRC32 ring and "
            "its peers\n",
            ".SH SYNOPSIS\n.nf\n.B #include <chash.h>\n.PP\nLink with \\fI\\-lchash\\fR "
            "(pkg\\-config: chash; CMake: find_package(chash), chash::shared).\n.fi\n",
            ".SH DESCRIPTION\n.nf\n%s\n.fi\n" % esc(intro.split("\n", 1)[1].strip())]
    if abi:
        page.append(".SH VERSIONS AND THE ABI\n.nf\n%s\n.fi\n"
                    % esc(comment_text(abi.group(1)).split("\n", 1)[1].strip()))
    page.append(".SH FUNCTIONS\n")
    for text, protos in items:
        proto = re.sub(r"\s+", " ", protos.replace("CHASH_API ", ""))
        page.append(".PP\n.nf\n.B %s\n.fi\n.RS 4\n.nf\n%s\n.fi\n.RE\n"
                    % (esc(proto).replace(";", ";\n.B ").rstrip("\n.B "), esc(text)))
    page.append(".SH SEE ALSO\n.BR chash (1),\n.BR chash\\-proxy (8)\n")
    return "".join(page)


def main():
    os.makedirs(ARGS.out, exist_ok=True)
    pages = [("chash.1", chash_page), ("libchash.3", library_page)]
    if ARGS.proxy:
        pages.append(("chash-proxy.8", proxy_page))
    for name, make in pages:
        with open(os.path.join(ARGS.out, name), "w") as f:
            f.write(make())
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chash", required=True)
    ap.add_argument("--proxy")
    ap.add_argument("--header", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True)
    ARGS = ap.parse_args()
    sys.exit(main())
