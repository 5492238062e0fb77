#!/usr/bin/python3
"""Writes the manual pages from the README, so that they say what the README says:
mailwerk(1), the commands (its "CLI reference"), and mailwerk(8), the server (serve, its
signals, and the "Configuration reference").

    scripts/manpages.py README.md OUTDIR      -> OUTDIR/mailwerk.1, OUTDIR/mailwerk.8

The README's markdown is small: paragraphs, `code`, **bold**, [links](url) and tables of two or
three columns; that is all this reads. A README without the sections is an error, never an empty
page."""
import os
import re
import sys
import time


def section(readme, title):
    """The lines under "## title" up to the next heading of that level or above."""
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), readme, re.M | re.S)
    if not m:
        sys.exit("manpages.py: the README has no section \"%s\"" % title)
    return m.group(1)


def escape(text):
    """roff text: backslashes as \\e, dashes as hyphens, anything not ASCII as a groff \\[uXXXX]
    escape (so the page needs no input encoding)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in text)


def inline(md):
    """markdown inline markup to roff: `code` bold, **bold** bold, [text](url) as text."""
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    out, pos = [], 0
    for m in re.finditer(r"`([^`]*)`|\*\*([^*]*)\*\*", md):
        out.append(escape(md[pos:m.start()]))
        out.append("\\fB" + escape(m.group(1) if m.group(1) is not None else m.group(2)) + "\\fR")
        pos = m.end()
    out.append(escape(md[pos:]))
    line = "".join(out)
    return "\\&" + line if line.startswith((".", "'")) else line


def cells(row):
    """A table row's cells; "\\|" inside a cell is a literal bar."""
    parts = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def render(md):
    """Paragraphs and tables of a README section as roff: a table row becomes a tagged paragraph
    (its first cell the tag, the rest the text)."""
    out, para = [], []
    lines = md.splitlines()
    rule = lambda l: l.startswith("|") and all(re.fullmatch(r":?-+:?", x) for x in cells(l))

    def flush():
        if para:
            out.append(".PP")
            out.append(inline(" ".join(para)))
            para.clear()
    for i, line in enumerate(lines):
        if line.startswith("|"):
            flush()
            c = cells(line)
            if rule(line) or (i + 1 < len(lines) and rule(lines[i + 1])):
                continue  # the header row and its rule
            out.append(".TP")
            out.append(inline(c[0]) + (" (default: " + inline(c[1]) + ")" if len(c) == 3 else ""))
            out.append(inline(c[-1]))
        elif line.startswith("#"):
            flush()
            out.append(".SS " + inline(line.lstrip("#").strip()))
        elif line.strip() == "" or line.startswith("```"):
            flush()
        else:
            para.append(line.strip())
    flush()
    return "\n".join(out)


def page(name, number, summary, date, parts):
    head = ['.\\" Made by scripts/manpages.py from README.md; edit the README instead.',
            '.TH MAILWERK %d "%s" "mailwerk" "%s"' % (number, date, "mailwerk manual"),
            ".SH NAME", "%s \\- %s" % (name, escape(summary))]
    for title, body in parts:
        head += [".SH " + title, body]
    return "\n".join(head) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: manpages.py README.md OUTDIR")
    readme = open(sys.argv[1], encoding="utf-8").read()
    outdir = sys.argv[2]
    # SOURCE_DATE_EPOCH (reproducible-builds.org) when the packager gives it, else today
    date = time.strftime("%Y-%m-%d", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))))
    cli = section(readme, "CLI reference")
    conf = section(readme, "Configuration reference")
    os.makedirs(outdir, exist_ok=True)
    one = page("mailwerk", 1, "manage a mailwerk mail server: users, domains, aliases, routes, queue, DKIM, DNS, API keys",
               date, [("SYNOPSIS", "\\fBmailwerk\\fR \\fIcommand\\fR [\\fIoptions\\fR] [\\fB\\-c\\fR \\fIFILE\\fR]"),
                      ("DESCRIPTION", render(cli)),
                      ("SEE ALSO", "\\fBmailwerk\\fR(8)")])
    eight = page("mailwerk", 8, "the mailwerk mail server: SMTP, submission, POP3 and an HTTP API", date,
                 [("SYNOPSIS", "\\fBmailwerk serve\\fR [\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-o\\fR \\fIsection.key=value\\fR]..."),
                  ("DESCRIPTION", render(
                      "`mailwerk serve` runs the server in the foreground, logging one line per event to standard "
                      "error. Under systemd it runs as the unit `mailwerk.service` (`Type=notify`): it reports "
                      "when it is ready, reloading and stopping.")),
                  ("SIGNALS", render(
                      "| signal | what it does |\n|---|---|\n"
                      "| `SIGHUP` | reads the configuration, the TLS certificate and the listeners again; sessions under "
                      "way keep what they started with; a configuration that does not load is refused and the old one "
                      "goes on |\n"
                      "| `SIGUSR2` | upgrades to the binary at the path the server was started from, keeping its pid and "
                      "every listening socket: a new worker from it, with a DKIM signer of its own, serves before the "
                      "old one drains (`[server] drain_timeout`) and exits with its signer; `mailwerk serve --upgrade` "
                      "sends it and waits for the outcome |\n"
                      "| `SIGTERM`, `SIGINT` | stops accepting, lets sessions finish for up to 10 seconds, then exits |")),
                  ("CONFIGURATION", render(conf)),
                  ("SEE ALSO", "\\fBmailwerk\\fR(1), \\fBsystemd.service\\fR(5)")])
    for name, text in (("mailwerk.1", one), ("mailwerk.8", eight)):
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)


main()
