/* SPDX-License-Identifier: Apache-2.0 OR MIT
 *
 * The claim and release of a vCPU's context between cores.
 *
 * Follows kernel/arch/src/vcpu.rs:
 *   VcpuCell { context, running: AtomicUsize, pending: Option<Start> }
 *   claim()            compare_exchange(NOWHERE, core) before a core makes
 *                      a vCPU current (make_current, switch_message)
 *   install() /
 *   release_current()  lets go of the outgoing vCPU after the incoming one
 *                      is claimed and loaded: applies a pending start,
 *                      then running.store(NOWHERE, Release)
 *   go_idle()          releases the current vCPU and idles (a failed claim
 *                      also ends here)
 *   prepare()          (restart: system::reload_vcpus on the partition's
 *                      home core) claims the context, spinning up to a
 *                      second while another core holds it; resets it; or,
 *                      if this core holds it, leaves the start pending
 *   access_register()  (Effect::VcpuRegister, a monitor's VcpuRead/Write)
 *                      claims, touches the context, releases
 *   vcpu.S             an exit saves the guest's registers into the
 *                      context before any Rust code runs; entry restores
 *                      them from it
 * and, for what the kernel state decides, kernel/core/src/state/fault.rs
 * (a restarting partition's vCPUs are stopped: no core picks them until
 * restart_done) and schedule.rs (switch_away picks the next vCPU).
 *
 * Scope: 2 cores, 2 vCPUs pinned to core 0 (v0 belongs to a partition
 * that restarts, v1 to one that does not). Either core may be the
 * partition's home core, which reloads it (chosen at each fault); core 1
 * also serves a monitor's register access to v1. Core 0 takes ROUNDS
 * kernel entries; core 1 causes up to RESTARTS faults and ACCESSES register
 * accesses. When core 0 is the home core, prepare may find the context
 * still held by core 0 itself (the pending start).
 *
 * Properties (assertions):
 *   - no two cores touch one context at once (touching[v] <= 1);
 *   - a vCPU restarted runs first from its start: the start prepare
 *     accepted is in its context when a core next enters it.
 *
 * Mutants (-D...):
 *   MUTANT_RELEASE_BEFORE_SAVE  an exit lets go of the context before the
 *                               registers are saved into it
 *   MUTANT_CLAIM_NO_CAS         claim as a load then a store, not one
 *                               compare-exchange
 *   MUTANT_DROP_PENDING         release_current lets go without applying
 *                               a pending start
 */

#define NOWHERE 255
#define NV 2
#ifndef ROUNDS
#define ROUNDS 5
#endif
#ifndef RESTARTS
#define RESTARTS 2
#endif
#ifndef ACCESSES
#define ACCESSES 1
#endif

byte running[NV] = NOWHERE; /* VcpuCell::running: the core holding it, or NOWHERE */
bool pending[NV];        /* VcpuCell::pending is Some */
byte touching[NV];       /* ghost: cores reading or writing the context now */
bool ctx_start[NV];      /* ghost: the context holds a start (reset, not yet run) */
bool must_start[NV];     /* ghost: restarted; must enter from its start */
bool stopped[NV];        /* kernel state: its partition is restarting */
bool restarting;         /* kernel state: v0's partition has a restart under way */
byte home;               /* kernel state: the core that reloads it (Reload::home) */
byte chosen0 = NOWHERE;  /* kernel state: core 0's current vCPU (Core::current) */
bool leaving0;           /* kernel state: core 0 may still run v0's partition
                            (Backoff::leaving, bit 0) until its next step */

/* A core reads or writes the context of v: no other core may be inside. */
inline touch(v) {
    d_step { touching[v]++ };
    assert(touching[v] == 1);
    touching[v]--
}

/* vcpu.rs reset(): the context becomes the start. */
inline reset(v) {
    touch(v);
    ctx_start[v] = true
}

/* vcpu.rs claim(): the CAS. */
inline claim(v, me, ok) {
#ifdef MUTANT_CLAIM_NO_CAS
    if
    :: running[v] == NOWHERE -> running[v] = me; ok = true
    :: else -> ok = false
    fi
#else
    atomic {
        if
        :: running[v] == NOWHERE -> running[v] = me; ok = true
        :: else -> ok = false
        fi
    }
#endif
}

/* vcpu.rs release_current(). */
inline release(v) {
    if
    :: v != NOWHERE ->
#ifndef MUTANT_DROP_PENDING
        if
        :: pending[v] -> pending[v] = false; reset(v)
        :: else -> skip
        fi;
#endif
        running[v] = NOWHERE
    :: else -> skip
    fi
}

/* vcpu.rs prepare(): on core me; ok says whether the start was accepted. */
inline prepare(v, me, ok) {
    /* Claim, spinning while another core holds it; the one-second deadline
       is a nondeterministic give-up. */
    do
    :: atomic {
           running[v] == NOWHERE -> running[v] = me; ok = true
       }; break
    :: atomic { running[v] == me -> ok = false }; break   /* held here: pending */
    :: running[v] != NOWHERE && running[v] != me -> skip /* relax() */
    :: running[v] != NOWHERE && running[v] != me -> ok = false; goto gaveup
    od;
    if
    :: ok ->
        reset(v);
        running[v] = NOWHERE
    :: else ->
        pending[v] = true;   /* applied when this core lets go of it */
        ok = true
    fi;
gaveup:
    skip
}

active proctype core0() {
    byte cur = NOWHERE;
    byte next;
    byte rounds = 0;
    bool ok;

    do
    :: rounds < ROUNDS ->
        rounds++;
        /* A kernel entry (the first, or after an exit): the running vCPU's
           partition may fault here (fault.rs stop_or_restart). */
        if
        :: atomic {
               cur == 0 && !restarting ->
               restarting = true; stopped[0] = true;
               if :: home = 0 :: home = 1 fi
           }
        :: skip
        fi;
        /* The step (tick / reschedule: let_go, then switch_away / settle)
           picks what runs next: a vCPU of a running partition, or none. */
        atomic {
            if
            :: !stopped[0] -> next = 0
            :: !stopped[1] -> next = 1
            :: next = NOWHERE
            fi;
            chosen0 = next;
            leaving0 = false
        };
        /* This core may be the restarting partition's home core: its tick
           reloads it once every core has let go (backoff.rs reload_work,
           restart_due), before the step's outcome is carried out: prepare
           may find v0 still held by this core. */
        if
        :: atomic { restarting && !leaving0 && home == 0 } ->
            prepare(0, 0, ok);
            if
            :: ok -> atomic { stopped[0] = false; must_start[0] = true; restarting = false }
            :: else -> skip
            fi
        :: skip
        fi;
        /* The outcome (dispatch.rs apply -> vcpu.rs switch / go_idle). */
        if
        :: next == NOWHERE ->
            release(cur); cur = NOWHERE          /* go_idle */
        :: next != NOWHERE && next == cur -> skip /* the same vCPU again */
        :: next != NOWHERE && next != cur ->
            claim(next, 0, ok);
            if
            :: ok ->
                touch(next);                      /* load_regs */
                release(cur);                     /* install: release_current */
                cur = next
            :: else ->
                release(cur); cur = NOWHERE       /* claim failed: go_idle */
            fi
        fi;
        if
        :: cur != NOWHERE ->
            /* Entry (hv_enter_current): registers restored from the context. */
            touch(cur);
            assert(!must_start[cur] || ctx_start[cur]);
            must_start[cur] = false;
            ctx_start[cur] = false;
            /* ... the guest runs, then exits: vcpu.S saves its registers. */
#ifdef MUTANT_RELEASE_BEFORE_SAVE
            running[cur] = NOWHERE;
            touch(cur);
            ctx_start[cur] = false;
            atomic { running[cur] == NOWHERE -> running[cur] = 0 }
#else
            touch(cur);
            ctx_start[cur] = false
#endif
        :: else -> skip    /* idle until an interrupt */
        fi
    :: else -> break
    od;
    release(cur)
}

/* Core 1: the home core of v0's partition (its reload calls prepare), and a
   monitor's register access to v1 (access_register). */
active proctype core1() {
    byte restarts = 0;
    byte accesses = 0;
    bool ok;
    do
    :: atomic {
           /* A fault elsewhere stops v0's partition (fault.rs): core 0 is
              noted as leaving if the state has it running v0. */
           restarts < RESTARTS && !restarting ->
           restarting = true; stopped[0] = true; leaving0 = (chosen0 == 0);
           if :: home = 0 :: home = 1 fi;
           restarts++
       }
    :: atomic { restarting && !leaving0 && home == 1 } ->
        /* The reload, once restart_due (every core let go): reload_vcpus ->
           prepare, then restart_done. */
        prepare(0, 1, ok);
        if
        :: ok -> atomic { stopped[0] = false; must_start[0] = true; restarting = false }
        :: else -> break   /* restart_abandoned: v0 stays stopped */
        fi
    :: accesses < ACCESSES ->
        accesses++;
        do
        :: atomic { running[1] == NOWHERE -> running[1] = 1 }; break
        :: running[1] != NOWHERE -> skip
        :: running[1] != NOWHERE -> goto done   /* the deadline */
        od;
        touch(1);
        running[1] = NOWHERE;
    done:
        skip
    :: else -> break
    od
}
