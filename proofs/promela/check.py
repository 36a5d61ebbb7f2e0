#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Checks the Promela models of the multicore protocols with spin
(proofs/promela/README.md).

    python3 proofs/promela/check.py [--quick|--full] [--mutants]

spin comes from the environment variable SPIN or the PATH, the C compiler
from CC or `cc`. Prints one JSON object per check on stdout (property,
method, scope, states, result, seconds, and detail on a failure: the
counterexample's steps); exits 1 if any check fails. With --mutants, runs
only the deliberately broken variants: each passes when spin finds its
counterexample.
"""

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (model, property, kind, bounds per profile, scope text, mutants)
# kind: "safety" (assertions, invalid end states) or "ltl" (the model's
# LTL claim, acceptance cycles under weak fairness).
CHECKS = [
    {
        "model": "claim.pml",
        "property": "vCPU context claim/release: no two cores touch one context at once; "
                    "a restarted vCPU first runs from its start",
        "kind": "safety",
        "bounds": {"quick": {"ROUNDS": 5, "RESTARTS": 2, "ACCESSES": 1},
                   "full": {"ROUNDS": 9, "RESTARTS": 3, "ACCESSES": 2}},
        "scope": "2 cores, 2 vCPUs pinned to core 0 (one restartable), either core the home "
                 "core; {ROUNDS} kernel entries on core 0 (each may fault), {RESTARTS} faults "
                 "from core 1, {ACCESSES} register accesses",
        "mutants": [
            ("MUTANT_RELEASE_BEFORE_SAVE", "an exit releases the context before saving it"),
            ("MUTANT_CLAIM_NO_CAS", "claim as a load and a store instead of one CAS"),
            ("MUTANT_DROP_PENDING", "release without applying a pending start"),
        ],
    },
    {
        "model": "restart.pml",
        "property": "restart: memory is never reloaded while a core executes the partition",
        "kind": "safety",
        "bounds": {"quick": {"ROUNDS": 4, "FAULTS": 2},
                   "full": {"ROUNDS": 6, "FAULTS": 3}},
        "scope": "3 cores; restartable partition with vCPUs on cores 1 and 2 (home core 1), "
                 "another partition on every core; {ROUNDS} kernel entries per core, "
                 "{FAULTS} faults",
        "mutants": [
            ("MUTANT_NO_LEAVING", "the stop does not note the cores still in the partition"),
            ("MUTANT_RELOAD_IGNORES_LEAVING", "the reload does not wait for cores to let go"),
        ],
    },
    {
        "model": "wakeup.pml",
        "property": "cross-core wake-up: every signal and message reaches its vCPU on "
                    "another core, and a blocked sender runs again (no lost wake-up)",
        "kind": "ltl",
        "bounds": {"quick": {"SIGNALS": 2, "MSGS": 1},
                   "full": {"SIGNALS": 3, "MSGS": 2}},
        "scope": "3 cores, no timer ticks; {SIGNALS} signals from core 0 and {MSGS} IPC "
                 "messages from core 2 to a vCPU on core 1 that shares its core with a "
                 "lower-priority vCPU that never blocks",
        "mutants": [
            ("MUTANT_SGI_NOT_LATCHED", "a kick arriving while the core is in the kernel is "
                                       "lost"),
            ("MUTANT_KICK_ONLY_IF_IDLE", "a core running a lower priority is not kicked"),
        ],
    },
]

DEPTH = 200000


def emit(results, prop, method, scope, states, ok, seconds, detail=None):
    rec = {"property": prop, "method": method, "scope": scope, "states": states,
           "result": "pass" if ok else "fail", "seconds": round(seconds, 3)}
    if detail:
        rec["detail"] = detail
    print(json.dumps(rec), flush=True)
    results.append(ok)


def tool(env, default):
    value = os.environ.get(env)
    if value:
        return shutil.which(value) or (value if os.path.exists(value) else None)
    return shutil.which(default)


def run(cmd, cwd, timeout):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout


def trail(spin, workdir, model, defines):
    """The counterexample's steps, as spin replays them."""
    code, out = run([spin, "-t", "-p", "-g"] + defines + [model], workdir, 60)
    steps = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+):\s+proc\s+(\d+)\s+\((\w+):\d+\)\s+\S+:(\d+)\s+\(state \d+\)\s+\[(.*)\]",
                     line)
        if m:
            steps.append("%s %s(pid %s) line %s [%s]" % (m.group(1), m.group(3), m.group(2),
                                                       m.group(4), m.group(5)))
        elif "START OF CYCLE" in line:
            steps.append("-- cycle starts: from here it repeats for ever --")
        elif "assertion violated" in line or "Error:" in line:
            steps.append(line.strip())
    if len(steps) > 60:
        steps = ["... %d earlier steps ..." % (len(steps) - 60)] + steps[-60:]
    return " | ".join(steps)


def verify(spin, cc, check, bounds, mutant=None):
    """Generates, compiles and runs the verifier. Returns (ok_no_error,
    complete, states, error text, trail text)."""
    workdir = tempfile.mkdtemp(prefix="bulkhead-spin-")
    try:
        shutil.copy(os.path.join(HERE, check["model"]), workdir)
        defines = ["-D%s=%d" % (k, v) for k, v in sorted(bounds.items())]
        if mutant:
            defines.append("-D" + mutant)
        code, out = run([spin, "-a"] + defines + [check["model"]], workdir, 60)
        if code != 0 or not os.path.exists(os.path.join(workdir, "pan.c")):
            raise RuntimeError("spin -a failed: " + out.strip()[-500:])
        # The state spaces are small: compiling dominates, so -O1 on the quick
        # profile, -O2 on the full one.
        cflags = ["-O2" if bounds is check["bounds"]["full"] else "-O1", "-w"]
        if check["kind"] == "safety":
            cflags.append("-DSAFETY")
        code, out = run([cc] + cflags + ["-o", "pan", "pan.c"], workdir, 300)
        if code != 0:
            raise RuntimeError("compiling pan.c failed: " + out.strip()[-500:])
        args = ["./pan", "-m%d" % DEPTH]
        if check["kind"] == "ltl":
            args += ["-a", "-f"]
        code, out = run(args, workdir, 600)
        m = re.search(r"errors:\s*(\d+)", out)
        if not m:
            raise RuntimeError("pan gave no verdict: " + out.strip()[-500:])
        errors = int(m.group(1))
        s = re.search(r"(\d+)\s+states, stored", out)
        states = int(s.group(1)) if s else None
        complete = "max search depth too small" not in out and \
            "Search not completed" not in out or errors > 0
        err = ""
        for line in out.splitlines():
            if line.startswith("pan:") and ("violated" in line or "cycle" in line
                                            or "invalid end" in line):
                err = line.strip()
                break
        steps = trail(spin, workdir, check["model"], defines) if errors else ""
        return errors == 0, complete, states, err, steps
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv):
    profile = "full" if "--full" in argv else "quick"
    mutants = "--mutants" in argv
    results = []
    spin = tool("SPIN", "spin")
    cc = tool("CC", "cc")
    if not spin or not cc:
        emit(results, "spin and a C compiler are installed", "lookup", "-", None, False, 0.0,
             "spin: %s (set SPIN or put spin on PATH; Debian package `spin`); C compiler: %s "
             "(set CC)" % (spin, cc))
        return 1
    jobs = []
    for check in CHECKS:
        bounds = check["bounds"][profile]
        scope = check["scope"].format(**bounds)
        runs = [(m, d) for m, d in check["mutants"]] if mutants else [(None, None)]
        for mutant, desc in runs:
            jobs.append((check, bounds, scope, mutant, desc))

    def one(job):
        check, bounds, scope, mutant, desc = job
        t = time.monotonic()
        try:
            return job, verify(spin, cc, check, bounds, mutant), None, time.monotonic() - t
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            return job, None, str(e), time.monotonic() - t

    # Independent runs (most of each is compiling pan.c): in parallel, the
    # results printed in order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        done = list(pool.map(one, jobs))
    for (check, bounds, scope, mutant, desc), verdict, error, dt in done:
        if error is not None:
            prop = ("mutant: %s is refuted" % desc) if mutant else check["property"]
            emit(results, prop, "spin", scope, None, False, dt, error)
            continue
        clean, complete, states, err, steps = verdict
        method = ("spin exhaustive, Promela model, " +
                  ("assertions" if check["kind"] == "safety" else "LTL under weak fairness"))
        if mutant:
            ok = not clean
            detail = ("counterexample (%s -D%s): %s %s" % (check["model"], mutant, err, steps)
                      if ok else "spin found no counterexample to -D%s" % mutant)
            emit(results, "mutant: %s is refuted (%s)" % (desc, check["model"]),
                 "spin counterexample search (mutant)", scope, states, ok, dt, detail)
        else:
            ok = clean and complete
            detail = None
            if not clean:
                detail = "counterexample: %s %s" % (err, steps)
            elif not complete:
                detail = "search incomplete (depth bound %d reached)" % DEPTH
            emit(results, check["property"], method, scope, states, ok, dt, detail)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
