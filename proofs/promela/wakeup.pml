/* SPDX-License-Identifier: Apache-2.0 OR MIT
 *
 * Cross-core wake-ups: a signal to a vCPU pinned to another core, and the
 * kick that makes that core look again.
 *
 * Follows:
 *   kernel/core/src/state/notify.rs   signal / signal_notification: the
 *                                     bits are ORed into the word; a waiter
 *                                     queued is popped, given the word, and
 *                                     woken (wake -> make_ready); wait: bits
 *                                     already set are taken at once, else the
 *                                     vCPU blocks and its core switches away
 *   kernel/core/src/state/schedule.rs make_ready: the woken vCPU joins its
 *                                     own core's ready queue; that core is
 *                                     named in the step's kick if it idles
 *                                     or runs a lower priority;
 *                                     switch_away / settle / reschedule /
 *                                     idle
 *   kernel/kern/src/dispatch.rs       each step under the domain lock;
 *                                     kick_cores sends the SGIs after it;
 *                                     interrupt_while_idle
 *   kernel/arch/src/cpu.rs            wait_for_interrupt (WFI): an SGI sent
 *                                     while the core was still in the
 *                                     kernel stays pending at its GIC
 *                                     interface and ends the WFI at once
 *   kernel/kern/src/irq.rs            the idle loop
 *
 and, for IPC, kernel/core/src/state/ipc.rs: send to a receiver queued on
 * the endpoint wakes it (wake -> make_ready, the same path); a sender that
 * finds no receiver blocks, and the receive that takes its message wakes
 * it (make_ready on the sender's core, kicked).
 *
 * Scope: 3 cores. Core 0 runs a signaller that signals SIGNALS times (a
 * distinct bit each); core 2 runs a sender S that sends MSGS messages (a
 * distinct bit each) on an endpoint; core 1 runs the waiter W (high
 * priority), which waits on the notification or receives on the endpoint
 * (either, in any order, while it still expects something there), and a
 * lower-priority vCPU L that never blocks. Timer ticks
 * are left out on purpose: the kick alone must wake a core (a tick would
 * only hide a lost kick behind a 10 ms delay).
 *
 * Property (LTL, weak fairness): <> done, where done means W has run with
 * every bit signalled and every message sent, and S has run again after
 * its last send. A lost wake-up leaves a core idle in WFI, or running L,
 * for ever.
 *
 * Mutants (-D...):
 *   MUTANT_SGI_NOT_LATCHED   a kick that arrives while the target core is
 *                            still in the kernel (between its step and its
 *                            WFI or guest entry) is lost
 *   MUTANT_KICK_ONLY_IF_IDLE make_ready kicks a core only if it idles, not
 *                            when it runs a lower priority
 */

#ifndef SIGNALS
#define SIGNALS 2
#endif
#ifndef MSGS
#define MSGS 1
#endif
#define ALL ((1 << (SIGNALS + MSGS)) - 1)
#define SIGBITS ((1 << SIGNALS) - 1)
#define MSGBITS (ALL & ~SIGBITS)
#define NONE 0
#define W 1
#define L 2
#define S 3

/* The kernel state (under the domain lock: only touched in atomic blocks). */
byte cur1 = W;          /* Core::current of core 1 */
byte cur2 = S;          /* Core::current of core 2 */
bool wready;            /* W is in core 1's ready queue */
bool lready = true;     /* L is in core 1's ready queue */
bool sready;            /* S is in core 2's ready queue */
bool wwaiting;          /* W is queued on the notification */
bool wrecv;             /* W is queued on the endpoint to receive */
bool squeued;           /* S is queued on the endpoint with its message */
byte smsg;              /* S's message (its bit) while queued */
byte word;              /* the notification's word */
byte wregs;             /* W's saved registers: the bits it was woken with */

/* The hardware and ghosts. */
bool sgi[3];            /* a kick pending at core n */
bool inkernel[3];       /* core n is between a step and its WFI / guest entry */
byte seen;              /* ghost: the bits W has run with */
bool sdone;             /* ghost: S ran after its last send */
bool done;

ltl woken { <> done }

/* kick_cores, after the lock. */
inline send_kick(c) {
#ifdef MUTANT_SGI_NOT_LATCHED
    if
    :: !inkernel[c] -> sgi[c] = true
    :: else -> skip      /* lost */
    fi
#else
    sgi[c] = true
#endif
}

/* make_ready(W, here != 1): the kick for core 1. */
inline ready_w(kick) {
    wready = true;
#ifdef MUTANT_KICK_ONLY_IF_IDLE
    kick = (cur1 == NONE)
#else
    kick = (cur1 == NONE || cur1 == L)
#endif
}

active proctype core0() {
    byte i = 0;
    bool kick;
    do
    :: i < SIGNALS ->
        atomic {
            /* Signal (notify.rs signal -> signal_notification). */
            word = word | (1 << i);
            kick = false;
            if
            :: wwaiting ->
                wregs = wregs | word; word = 0;
                wwaiting = false;
                ready_w(kick)       /* wake -> make_ready */
            :: else -> skip
            fi
        };
        if :: kick -> send_kick(1) :: else -> skip fi;
        i++
    :: else -> break
    od
}

active proctype core2() {
    byte i = 0;
    bool kick;
    do
    :: cur2 == S && i < MSGS ->
        atomic {
            /* Send (ipc.rs send): to a queued receiver, or block. */
            kick = false;
            if
            :: wrecv ->
                wrecv = false;
                wregs = wregs | (1 << (SIGNALS + i));
                ready_w(kick)
            :: else ->
                squeued = true; smsg = 1 << (SIGNALS + i);
                cur2 = NONE;        /* switch_away: nothing else here */
                inkernel[2] = true
            fi;
            i++
        };
        inkernel[2] = false;
        if :: kick -> send_kick(1) :: else -> skip fi
    :: cur2 == S && i == MSGS -> sdone = true; break
    :: cur2 == NONE ->
        /* Idle until the kick. */
        atomic {
            sgi[2] -> sgi[2] = false;
            if :: sready -> sready = false; cur2 = S :: else -> skip fi;
            inkernel[2] = true
        };
        inkernel[2] = false
    od
}

/* What core 1 runs next when it picks from its ready queue (switch_away):
   W before L (priority). */
inline switch_away1() {
    if
    :: wready -> wready = false; cur1 = W; seen = seen | wregs; wregs = 0
    :: !wready && lready -> lready = false; cur1 = L
    :: !wready && !lready -> cur1 = NONE
    fi
}

active proctype core1() {
    bool kick;
    do
    :: cur1 == W && seen == ALL -> sdone -> done = true; break
    :: cur1 == W && seen != ALL ->
        kick = false;
        if
        :: atomic {
               /* W calls Wait (notify.rs wait), while it expects a signal. */
               (seen & SIGBITS) != SIGBITS ->
               if
               :: word != 0 -> seen = seen | word; word = 0
               :: word == 0 ->
                   wwaiting = true;
                   switch_away1();
                   inkernel[1] = true
               fi
           }
        :: atomic {
               /* W calls Recv (ipc.rs recv): takes a queued message, waking
                  its sender (make_ready on core 2), or blocks; while it
                  expects a message. */
               (seen & MSGBITS) != MSGBITS ->
               if
               :: squeued ->
                   seen = seen | smsg; squeued = false;
                   sready = true; kick = (cur2 == NONE)
               :: else ->
                   wrecv = true;
                   switch_away1();
                   inkernel[1] = true
               fi
           }
        fi;
        inkernel[1] = false;       /* enters L, or WFI */
        if :: kick -> send_kick(2) :: else -> skip fi
    :: cur1 == L ->
        /* L runs until an interrupt: here only a kick (reschedule). */
        atomic {
            sgi[1] -> sgi[1] = false;
            /* settle: a ready vCPU of higher priority preempts L */
            if
            :: wready -> lready = true; switch_away1()
            :: else -> skip
            fi;
            inkernel[1] = true
        };
        inkernel[1] = false
    :: cur1 == NONE ->
        /* Idle: WFI until the kick (interrupt_while_idle -> idle ->
           reschedule). */
        atomic {
            sgi[1] -> sgi[1] = false;
            switch_away1();
            inkernel[1] = true
        };
        inkernel[1] = false
    od
}
