#!/usr/bin/env python3
"""Memory figures for bench/accept.sh, read from /proc (values in KiB).

  memstat.py proc PID         -> "hwm=N rss=N pss=N" for one process (VmHWM, VmRSS, Pss)
  memstat.py postfix QUEUE_DIR -> "pss=N rss=N procs=N" summed over the Postfix master of that
                                  queue directory (QUEUE_DIR/pid/master.pid) and its children
                                  (every Postfix daemon is a child of master)
Prints "n/a" for a figure it cannot read (e.g. a process that exited meanwhile)."""
import os
import sys


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def ppid_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces; fields after the last ')' are fixed
    return int(data.rsplit(")", 1)[1].split()[1])


def fmt(v):
    return "n/a" if v is None else str(v)


def cmd_proc(pid):
    print(f"hwm={fmt(status_kb(pid, 'VmHWM'))} rss={fmt(status_kb(pid, 'VmRSS'))} pss={fmt(pss_kb(pid))}")


def cmd_postfix(queue_dir):
    try:
        with open(os.path.join(queue_dir, "pid", "master.pid")) as f:
            master = int(f.read().strip())
    except (OSError, ValueError):
        print("pss=n/a rss=n/a procs=0")
        return
    pids = [master] + [int(p) for p in os.listdir("/proc") if p.isdigit() and ppid_of(p) == master]
    pss = rss = 0
    n = 0
    for p in pids:
        v = pss_kb(p)
        r = status_kb(p, "VmRSS")
        if v is None or r is None:
            continue  # exited between the listing and the read
        pss += v
        rss += r
        n += 1
    print(f"pss={pss} rss={rss} procs={n}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("proc", "postfix"):
        sys.exit(__doc__)
    if sys.argv[1] == "proc":
        cmd_proc(int(sys.argv[2]))
    else:
        cmd_postfix(sys.argv[2])


if __name__ == "__main__":
    main()
