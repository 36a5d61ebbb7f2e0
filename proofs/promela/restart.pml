/* SPDX-License-Identifier: Apache-2.0 OR MIT
 *
 * A restart against cores still running inside the partition.
 *
 * Follows:
 *   kernel/core/src/state/fault.rs    stop_or_restart: the other cores whose
 *                                     current vCPU is the partition's
 *                                     (`running`), tear_down (they stop being
 *                                     current; the step's kick names them),
 *                                     `stopped` (Backoff::leaving |= running,
 *                                     reload queued on the home core),
 *                                     restart_done, restart_abandoned
 *   kernel/core/src/state/fault/backoff.rs  let_go (a core's tick or
 *                                     reschedule clears its bit),
 *                                     reload_work (nothing while `leaving`
 *                                     is not empty; Stuck after LET_GO_TICKS),
 *                                     restart_due, reload_progress
 *   kernel/core/src/state/schedule.rs tick / reschedule / idle call let_go
 *                                     first, then settle / switch_away
 *   kernel/kern/src/dispatch.rs       each step under the domain lock; the
 *                                     outcome's kicks sent after it
 *                                     (kick_cores); `reload` (the home
 *                                     core's tick zeroes and refills the RAM
 *                                     outside the lock, then
 *                                     reload_progress)
 *   kernel/arch/src/cpu.rs            wait_for_interrupt: an idle core
 *                                     sleeps until an interrupt (a kick or
 *                                     its tick)
 *
 * Scope: 3 cores; partition P (restart policy) has a vCPU pinned to core 1
 * and one to core 2, core 1 being its home core; partition Q has a vCPU on
 * every core. P's vCPUs may fault (their own Fault, or an exception) up to
 * FAULTS times; each core takes up to ROUNDS kernel entries (exits for a
 * tick, a kick, a hypercall or a fault; an idle core's wake-up).
 *
 * Property (assertions): while the home core reloads P's memory, no core
 * executes P's code: checked both when the reload touches memory and when
 * a core enters one of P's vCPUs.
 *
 * Mutants (-D...):
 *   MUTANT_NO_LEAVING             the stop does not note the cores still
 *                                 running the partition (leaving stays 0)
 *   MUTANT_RELOAD_IGNORES_LEAVING reload_work reloads without waiting for
 *                                 every core to let go
 */

#define NCORES 3
#define NONE 0
#define P 1
#define Q 2
#define ACTIVE 0
#define RESTARTING 1
#define STOPPED 2
#ifndef ROUNDS
#define ROUNDS 4
#endif
#ifndef FAULTS
#define FAULTS 2
#endif
#define HOME 1

/* The kernel state (under the domain lock: only touched in atomic blocks). */
byte cur[NCORES];          /* Core::current: NONE, or the partition of its vCPU */
bool pready[NCORES];       /* P's vCPU on that core is ready */
byte pstate = ACTIVE;
byte leaving;              /* Backoff::leaving: bit c, core c may still run P */
bool queued;               /* Backoff::reload is Some */
byte faults;

/* The hardware. */
bool sgi[NCORES];          /* a kick is pending at the core's GIC interface */
bool inP[NCORES];          /* the core executes P's code (at EL0/EL1) */
bool reloading;            /* the home core is rewriting P's memory */

/* settle / switch_away on core c when it runs nothing: P's vCPU first if
   ready (P has the higher priority), else Q's (always ready). */
inline pick(c) {
    if
    :: cur[c] == NONE && pready[c] && pstate == ACTIVE -> cur[c] = P; pready[c] = false
    :: cur[c] == NONE && !(pready[c] && pstate == ACTIVE) -> cur[c] = Q
    :: cur[c] != NONE -> skip
    fi
}

/* backoff.rs let_go */
inline let_go(c) {
    leaving = leaving & ~(1 << c)
}

proctype core(byte c) {
    byte next;
    byte rounds = 0;
    byte kick;
    byte i;

    atomic { pick(c); next = cur[c] };
    do
    :: rounds < ROUNDS ->
        rounds++;
        kick = 0;
        /* Enter what the last step chose, and run until an exit. */
        if
        :: next == P ->
            atomic { assert(!reloading); inP[c] = true };
            /* ... P's code runs; an exit: */
            inP[c] = false
        :: next == Q -> skip
        :: next == NONE ->
            /* Idle (irq.rs idle, cpu.rs wait_for_interrupt): until a kick or
               the tick. */
            skip
        fi;
        /* The exit's step, under the lock. */
        if
        :: atomic {
               /* A fault of P's vCPU running here (fault.rs fault). */
               next == P && cur[c] == P && pstate == ACTIVE && faults < FAULTS ->
               faults++;
               kick = 0;
#ifndef MUTANT_NO_LEAVING
               i = 0;
               do
               :: i < NCORES && i != c && cur[i] == P -> kick = kick | (1 << i); i++
               :: i < NCORES && !(i != c && cur[i] == P) -> i++
               :: i == NCORES -> break
               od;
#endif
               /* tear_down: P's vCPUs leave every core and queue. */
               i = 0;
               do
               :: i < NCORES -> if :: cur[i] == P -> cur[i] = NONE :: else -> skip fi;
                                pready[i] = false; i++
               :: i == NCORES -> break
               od;
               leaving = leaving | kick;
               queued = true;
               pstate = RESTARTING;
               pick(c); next = cur[c]
           }
        :: atomic {
               /* The tick (schedule.rs tick): let go, then round-robin. */
               true ->
               let_go(c); pick(c); next = cur[c]
           }
        :: atomic {
               /* A kick (reschedule): let go, then settle. */
               sgi[c] -> sgi[c] = false;
               let_go(c); pick(c); next = cur[c]
           }
        :: atomic {
               /* A hypercall (no let_go): its vCPU carries on unless the
                  state took it off this core meanwhile. */
               next != NONE -> pick(c); next = cur[c]
           }
        fi;
        /* kick_cores, after the lock. */
        i = 0;
        do
        :: i < NCORES -> if :: kick & (1 << i) -> sgi[i] = true :: else -> skip fi; i++
        :: i == NCORES -> break
        od;
        /* On the home core's tick: reload_work. */
        if
        :: c == HOME ->
            if
            :: atomic {
#ifdef MUTANT_RELOAD_IGNORES_LEAVING
                   queued ->
#else
                   queued && leaving == 0 ->
#endif
                   reloading = true
               };
               /* dispatch.rs reload: reload_vcpus, then the RAM, in pieces,
                  outside the lock. */
               assert(!inP[0] && !inP[1] && !inP[2]);
               assert(!inP[0] && !inP[1] && !inP[2]);
               atomic {
                   reloading = false;
                   /* reload_progress(complete) -> restart_done */
                   queued = false; pstate = ACTIVE;
                   pready[1] = true; pready[2] = true;
                   sgi[1] = true; sgi[2] = true
               }
            :: atomic {
                   /* Stuck: a core did not let go within LET_GO_TICKS:
                      restart_abandoned. */
                   queued && leaving != 0 -> queued = false; pstate = STOPPED
               }
            :: skip
            fi
        :: else -> skip
        fi
    :: else -> break
    od
}

init {
    atomic {
        pready[1] = true; pready[2] = true;
        run core(0); run core(1); run core(2)
    }
}
