# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Unwinding conditions of intransitive noninterference for the flow policy
the manifest induces (proofs/model/README.md).

The security domains are the partitions; the policy u ~> v is "u = v or the
manifest's channel graph has the edge u -> v" (`capmodel.Chan`, an
uninterpreted relation constrained only by `capmodel.manifest_axioms`, so
the result holds for every manifest). Following Rushby's unwinding theorem
for intransitive policies (the shape of seL4's information-flow proof), the
obligations are, for every action a of domain w = dom(a) and every domain u:

- output consistency: s ~w t  =>  out(a, s) = out(a, t);
- weak step consistency: s ~u t and s ~w t  =>  step(a, s) ~u step(a, t);
- local respect: not (w ~> u)  =>  s ~u step(a, s);

over states satisfying the capability invariants (capmodel.invariants).
u's view (~u): its private state (registers and RAM, abstracted to one
value), the contents of every object the manifest lets it observe, and its
own capability table (each slot's capability and provenance).

Actions: a partition's use of its capabilities on objects (send, receive,
reply, signal, wait, poll, read and write shared memory, control another
partition: `data`), and the capability operations derive, transfer,
revoke, delete, and restart (reset_partition and the reload of its RAM).
"""

from z3 import (And, BoolSort, BoolVal, Const, Consts, DeclareSort, ForAll, Function, If,
                Implies, Not, Or)

import capmodel as M
from capmodel import A, Store

Act = DeclareSort("Act")


class NState:
    def __init__(self, name, cap=None, priv=None, content=None):
        self.cap = cap if cap is not None else M.State(name)
        self.priv = priv if priv is not None else Function(name + ".priv", M.Part, M.Val)
        self.content = content if content is not None else Function(name + ".content", M.Obj,
                                                                    M.Val)


def ite_state(c, a, b):
    """The state `a` if c else `b` (an operation whose check failed changes
    nothing)."""
    def pick(f, g):
        return lambda *x: If(c, f(*x), g(*x))
    cap = M.State(**{k: pick(getattr(a.cap, k), getattr(b.cap, k)) for k in M.State.FIELDS})
    return NState(None, cap, pick(a.priv, b.priv), pick(a.content, b.content))


def view_eq(u, s, t):
    """s ~u t."""
    o = Const("v_o", M.Obj)
    x, a, b = Consts("v_x v_a v_b", M.Slot)
    S, T = s.cap, t.cap
    return And(
        A(s.priv, u) == A(t.priv, u),
        ForAll([o], Implies(M.observes(u, M.Auth(u, o), o), A(s.content, o) == A(t.content, o))),
        ForAll([x], Implies(M.owner(x) == u, A(S.valid, x) == A(T.valid, x))),
        ForAll([x], Implies(And(M.owner(x) == u, A(S.valid, x)), And(
            A(S.obj, x) == A(T.obj, x), A(S.rights, x) == A(T.rights, x),
            A(S.badge, x) == A(T.badge, x), A(S.root, x) == A(T.root, x)))),
        ForAll([x], Implies(And(M.owner(x) == u, A(S.valid, x), Not(A(S.root, x))),
                            A(S.parent, x) == A(T.parent, x))),
        ForAll([a, x], Implies(M.owner(x) == u, A(S.anc, a, x) == A(T.anc, a, x))),
        # The provenance of its capabilities: the chain of their ancestors
        # (its order, its root).
        ForAll([x, a, b], Implies(And(M.owner(x) == u, A(S.anc, a, x), A(S.anc, b, x)),
                                  A(S.anc, a, b) == A(T.anc, a, b))),
        ForAll([x, a], Implies(And(M.owner(x) == u, A(S.anc, a, x)),
                               A(S.root, a) == A(T.root, a))),
        ForAll([x], Implies(And(M.owner(x) == u, A(S.valid, x)),
                            A(S.rootof, x) == A(T.rootof, x))),
    )


def desc_chan(st):
    """A capability derived, however indirectly, from another partition's
    is in the table of a partition the ancestor's owner has a channel to."""
    a, d = Consts("dc_a dc_d", M.Slot)
    return ForAll([a, d], Implies(And(A(st.anc, a, d), M.owner(a) != M.owner(d)),
                                  M.Chan(M.owner(a), M.owner(d))))


def desc_reach(st):
    """A capability derived, however indirectly, from another partition's
    is in the table of a partition the ancestor's owner can reach along grant
    hops (a ghost invariant for grant-transitive manifests: with their
    axioms it implies desc_chan, and unlike desc_chan it is preserved by a
    transfer)."""
    a, d = Consts("dr_a dr_d", M.Slot)
    return ForAll([a, d], Implies(And(A(st.anc, a, d), M.owner(a) != M.owner(d)),
                                  M.GReach(M.owner(a), M.owner(d))))


# Uninterpreted effects of a data action.
Fread = Function("Fread", Act, M.Val, M.Val, M.Val)   # new private state from old and what it read
Fnone = Function("Fnone", Act, M.Val, M.Val)          # ... when the read is refused
Gwrite = Function("Gwrite", Act, M.Val, M.Val, M.Val)  # new object content from private state and old


def data_action(s, w, act, sr, sw):
    """w uses the capability in its slot sr to read (receive, wait, poll,
    read memory, see a status; a sender sees the endpoint's state: whether
    its message was taken, the reply) and the one in sw to write (send,
    reply, signal, write memory, control). Returns (post, output)."""
    S = s.cap
    canR = And(A(S.valid, sr), M.owner(sr) == w, M.observes(w, A(S.rights, sr), A(S.obj, sr)))
    canW = And(A(S.valid, sw), M.owner(sw) == w, M.modifies(A(S.rights, sw), A(S.obj, sw)))
    out = If(canR, Fread(act, A(s.priv, w), A(s.content, A(S.obj, sr))),
             Fnone(act, A(s.priv, w)))
    ow = A(S.obj, sw)
    content2 = Store(s.content, ow, If(canW, Gwrite(act, A(s.priv, w), A(s.content, ow)),
                                       A(s.content, ow)))
    return NState(None, S, Store(s.priv, w, out), content2), out


def cap_step(s, kind, w, mutant=None):
    """A capability operation by w on state s (unchanged if its checks
    fail). The operation's arguments are the same constants in both runs
    of a step-consistency check (they are the action)."""
    S = s.cap
    if kind == "derive":
        pre, post = M.op_derive(S)
        pre = And(pre, Const("caller", M.Part) == w)
    elif kind == "transfer":
        pre, post = M.op_transfer(S)
        pre = And(pre, Const("sender", M.Part) == w)
    elif kind == "revoke":
        pre, post, _ = M.op_revoke(S, mutant=mutant)
        pre = And(pre, Const("caller", M.Part) == w)
    elif kind == "delete a derived capability":
        pre, post = M.op_delete_derived(S)
        pre = And(pre, Const("caller", M.Part) == w)
    elif kind == "delete a root":
        pre, post = M.op_delete_root(S)
        pre = And(pre, Const("caller", M.Part) == w)
    else:
        raise ValueError(kind)
    return ite_state(pre, NState(None, post, s.priv, s.content), s)


def restart_step(s, P, nearest, reseed, tag=""):
    """P restarts (its own fault, dom = P): its table back to its seed, its
    private state (RAM reloaded, registers reset) to its initial value."""
    P0, post, cons = M.op_reset(s.cap, nearest, tag)
    return NState(None, post, Store(s.priv, P, reseed(P)), s.content), cons + [P0 == P]


CAP_OPS = ["derive", "transfer", "revoke", "delete a derived capability", "delete a root"]


def obligations(full=True):
    """(property, facts, goal) triples; each must be proved. The slowest
    (step consistency of a restart) only in the full profile."""
    out = []
    plain = M.manifest_axioms()
    gt = M.manifest_axioms(grant_transitive=True)
    s, t = NState("s"), NState("t")
    u, w = Consts("u w", M.Part)
    act = Const("act", Act)
    sr, sw = Consts("sr sw", M.Slot)
    inv_s = M.all_inv(s.cap) + [desc_chan(s.cap)]
    inv_t = M.all_inv(t.cap) + [desc_chan(t.cap)]

    # Data actions.
    s2, out_s = data_action(s, w, act, sr, sw)
    t2, out_t = data_action(t, w, act, sr, sw)
    out.append(("noninterference: output consistency of partitions' actions on objects",
                plain + inv_s + inv_t + [view_eq(w, s, t)], out_s == out_t))
    out.append(("noninterference: step consistency of partitions' actions on objects",
                plain + inv_s + inv_t + [view_eq(u, s, t), view_eq(w, s, t)],
                view_eq(u, s2, t2)))
    out.append(("noninterference: local respect of partitions' actions on objects",
                plain + inv_s + [u != w, Not(M.Chan(w, u))], view_eq(u, s, s2)))

    # Capability operations.
    for kind in CAP_OPS:
        ax = gt if kind in ("revoke", "delete a root") else plain
        cond = " (grant-transitive manifest)" if ax is gt else ""
        s2, t2 = cap_step(s, kind, w), cap_step(t, kind, w)
        out.append(("noninterference: step consistency of %s" % kind,
                    ax + inv_s + inv_t + [view_eq(u, s, t), view_eq(w, s, t)],
                    view_eq(u, s2, t2)))
        out.append(("noninterference: local respect of %s%s" % (kind, cond),
                    ax + inv_s + [u != w, Not(M.Chan(w, u))], view_eq(u, s, s2)))
        # Under a transfer, desc_chan follows from desc_reach (itself an
        # invariant, next) and the grant-transitive axioms.
        out.append(("noninterference: provenance stays within channels under %s%s"
                    % (kind, " (grant-transitive manifest)" if kind == "transfer" else ""),
                    (gt + [desc_reach(s.cap)] if kind == "transfer" else plain) + inv_s,
                    desc_chan(s2.cap)))
        out.append(("noninterference: provenance stays along grant chains under %s%s"
                    % (kind, " (grant-transitive manifest)" if kind == "transfer" else ""),
                    (gt if kind == "transfer" else plain) + inv_s + [desc_reach(s.cap)],
                    desc_reach(s2.cap)))

    # Restart.
    P = Const("restarted", M.Part)
    nearest = Function("nearest", M.Slot, M.Slot)
    reseed = Function("reseed", M.Part, M.Val)
    s2, cons = restart_step(s, P, nearest, reseed)
    out.append(("noninterference: local respect of a restart (grant-transitive manifest)",
                gt + inv_s + cons + [u != P, Not(M.Chan(P, u))], view_eq(u, s, s2)))
    out.append(("noninterference: provenance stays within channels under a restart",
                plain + inv_s + cons, desc_chan(s2.cap)))
    out.append(("noninterference: provenance stays along grant chains under a restart",
                plain + inv_s + cons + [desc_reach(s.cap)], desc_reach(s2.cap)))
    if not full:
        return out
    # Step consistency of a restart: each run chooses its survivors' new
    # parents (and its new tree's ghost) itself.
    ns, nt = Function("nearest_s", M.Slot, M.Slot), Function("nearest_t", M.Slot, M.Slot)
    s3, cons_s = restart_step(s, P, ns, reseed, "_s")
    t3, cons_t = restart_step(t, P, nt, reseed, "_t")
    out.append(("noninterference: step consistency of a restart",
                plain + inv_s + inv_t + cons_s + cons_t + [view_eq(u, s, t), view_eq(P, s, t)],
                view_eq(u, s3, t3)))
    return out


def sanity():
    """Premises of the unwinding proofs are satisfiable."""
    plain = M.manifest_axioms()
    s, t = NState("s"), NState("t")
    u, w = Consts("u w", M.Part)
    inv_s = M.all_inv(s.cap) + [desc_chan(s.cap)]
    inv_t = M.all_inv(t.cap) + [desc_chan(t.cap)]
    x = Const("san_x", M.Slot)
    return [
        ("sanity: premises of step consistency are satisfiable (two distinct states, "
         "equal views)", plain + inv_s + inv_t + [view_eq(u, s, t), view_eq(w, s, t), u != w,
                                                 A(s.priv, w) != A(t.priv, w) if False else
                                                 A(s.cap.valid, x) != A(t.cap.valid, x)]),
        ("sanity: premises of local respect are satisfiable (a partition with no channel "
         "to another)", plain + inv_s + [u != w, Not(M.Chan(w, u))]),
        ("sanity: premises with a grant-transitive manifest are satisfiable (a grant "
         "endpoint, a partition with no channel to another)",
         M.manifest_axioms(grant_transitive=True) + inv_s + [desc_reach(s.cap),
             u != w, Not(M.Chan(w, u)), M.isEP(Const("san_e", M.Obj)),
             M.has(M.Auth(w, Const("san_e", M.Obj)), M.GRANT),
             M.has(M.Auth(Const("san_q", M.Part), Const("san_e", M.Obj)), M.READ)]),
    ]


def known_gaps():
    """Documented limits: z3 must find these counterexamples. The first is a
    run from boot: x transfers a capability to w, w transfers its copy on to
    u, x revokes its own: u's table changes although the manifest has no
    channel from x to u."""
    plain = M.manifest_axioms()
    s = NState("s")
    u, w = Consts("u w", M.Part)
    inv_s = M.all_inv(s.cap) + [desc_chan(s.cap)]
    out = []
    x = Const("x", M.Part)
    z = Const("z", M.Slot)
    boot = s.cap.but(valid=M.seeded, obj=M.sobj, rights=M.srights, badge=M.sbadge,
                     root=lambda v: BoolVal(True), anc=lambda a, d: BoolVal(False),
                     rootof=lambda v: v)
    pre1, s1 = M.op_transfer(boot, tag="1")
    pre2, s2 = M.op_transfer(s1, tag="2")
    pre3, s3, _ = M.op_revoke(s2, tag="3")
    run = [pre1, pre2, pre3,
           Const("sender1", M.Part) == x, Const("receiver1", M.Part) == w,
           Const("sender2", M.Part) == w, Const("receiver2", M.Part) == u,
           Const("from2", M.Slot) == Const("to1", M.Slot),
           Const("caller3", M.Part) == x, Const("revoked3", M.Slot) == Const("from1", M.Slot),
           u != x, Not(M.Chan(x, u)), M.owner(z) == u]
    out.append(("known limit (counterexample expected): without a grant-transitive manifest, "
                "revoking a capability passed on twice changes the table of a partition the "
                "revoker has no channel to (a run from boot: transfer, transfer, revoke)",
                plain + run, s2.valid(z) == s3.valid(z), [("boot", boot), ("after 2 transfers", s2),
                                                          ("after revoke", s3)]))
    s3 = cap_step(s, "transfer", w)
    out.append(("known limit (counterexample expected): without a grant-transitive manifest, "
                "a second transfer puts a capability where its origin has no channel",
                plain + inv_s, desc_chan(s3.cap), [("before", s.cap), ("after", s3.cap)]))
    return out


def mutants():
    """Broken variants z3 must refute."""
    plain = M.manifest_axioms()
    gt = M.manifest_axioms(grant_transitive=True)
    s = NState("s")
    u, w = Consts("u w", M.Part)
    act = Const("act", Act)
    sr, sw = Consts("sr sw", M.Slot)
    inv_s = M.all_inv(s.cap) + [desc_chan(s.cap)]
    out = []
    # A write that does not check the capability's right.
    S = s.cap
    ow = A(S.obj, sw)
    bad = NState(None, S, s.priv, Store(s.content, ow, Gwrite(act, A(s.priv, w), A(s.content, ow))))
    out.append(("mutant: a write that skips the capability check is refuted (local respect)",
                plain + inv_s + [u != w, Not(M.Chan(w, u))], view_eq(u, s, bad)))
    return out
