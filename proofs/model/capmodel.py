# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The specification's capability state, encoded in SMT (z3), and its operations.

The model follows `kernel/core/src/cap.rs` (`may_derive`) and
`kernel/core/src/cap/space.rs` (`CapSpace`: `derive`, `transfer`,
`revoke`, `delete`, `reset_partition`), with the manifest (`hv_image`'s seed
and channel graph) as uninterpreted, constrained data.

Sorts are uninterpreted (unbounded): any number of partitions, slots,
objects, badges and memory frames. Rights are a 6-bit vector, as
`hv_abi::hypercall::Rights` (READ, WRITE, EXECUTE, GRANT, DERIVE, CONTROL).

A state is a record of functions: the pre-state's are uninterpreted z3
functions, an operation's post-state is built from them as Python closures
returning z3 terms, so no frame axioms are needed (what an operation does
not write is literally the same term) and z3 sees no array theory.

Ghost fields (not in the Rust code, kept to state the invariants in
first-order logic):
- `anc[a][d]`: `a` is a strict ancestor of `d` in the derivation tree (the
  transitive closure of `parent`, characterised by its fixpoint equation,
  transitive, a chain on each slot's ancestors, and irreflexive (`anc[d][d]` never holds), which on a finite state (every
  real one: MAX_PARTITIONS x MAX_CAPS slots) rules out cycles and makes the
  fixpoint the transitive closure;
- `rootof[s]`: the root a derived capability traces back to (a Skolem
  witness for "every capability traces to a seed");
- `toward[a][d]`: for an ancestor `a` of `d`, the child of `a` on the way
  to `d` (a Skolem witness: a slot with no children has no descendants,
  which `revoke_descendants`'s walk relies on).
"""

from z3 import (
    And, Array, ArraySort, BitVecSort, BitVecVal, BoolSort, Const, Consts,
    DeclareSort, ForAll, Function, If, Implies, IntSort, Lambda, Not, Or,
    BitVec, BoolVal, is_true,
)

# Sorts: unbounded.
Part = DeclareSort("Part")
Slot = DeclareSort("Slot")
Obj = DeclareSort("Obj")
Badge = DeclareSort("Badge")
Frame = DeclareSort("Frame")
Val = DeclareSort("Val")
RightsS = BitVecSort(6)

# Rights, as hv_abi::hypercall::Rights.
READ = BitVecVal(1 << 0, 6)
WRITE = BitVecVal(1 << 1, 6)
EXECUTE = BitVecVal(1 << 2, 6)
GRANT = BitVecVal(1 << 3, 6)
DERIVE = BitVecVal(1 << 4, 6)
CONTROL = BitVecVal(1 << 5, 6)
NONE = BitVecVal(0, 6)

NOBADGE = Const("NOBADGE", Badge)  # Badge(0): no badge yet


def has(r, bit):
    return (r & bit) != NONE


def sub(a, b):
    """a is a subset of b."""
    return (a & ~b) == NONE


# ---------------------------------------------------------------------------
# The manifest: static, uninterpreted, constrained by axioms.

owner = Function("owner", Slot, Part)          # the table a slot is in (SlotRef::partition)
seeded = Function("seeded", Slot, BoolSort())  # the seed put a capability there (CapSpace::seeds)
sobj = Function("sobj", Slot, Obj)
srights = Function("srights", Slot, RightsS)
sbadge = Function("sbadge", Slot, Badge)
# The manifest's authority: the rights partition p may ever hold over o
# (its channel ends, closed under the grants the manifest allows).
Auth = Function("Auth", Part, Obj, RightsS)
isEP = Function("isEP", Obj, BoolSort())       # Object::Endpoint
isPart = Function("isPart", Obj, BoolSort())   # Object::Partition
partOf = Function("partOf", Obj, Part)         # the partition a Partition object names
# The manifest's channel graph: an edge a -> b where information may flow.
Chan = Function("Chan", Part, Part, BoolSort())
# Grant reachability: a capability can travel from p to q along one or more
# grant hops (only a grant-transitive manifest constrains it; see below).
GReach = Function("GReach", Part, Part, BoolSort())
# Memory, as the manifest places it (stage-2 maps are fixed at boot).
Mapped = Function("Mapped", Part, Frame, BoolSort())
Ram = Function("Ram", Part, Frame, BoolSort())          # p's private RAM
Shared = Function("Shared", Frame, Part, BoolSort())     # a shared region declares p an end


def modifies(r, o):
    """Rights r over o let the holder change what o's other holders see:
    write memory / send / signal; grant; receive on an endpoint (it dequeues,
    and the reply goes back); control a partition."""
    return Or(has(r, WRITE), has(r, GRANT), And(isEP(o), has(r, READ)), has(r, CONTROL))


def observes(p, r, o):
    """Rights r over o let holder p see o's state; a partition sees what
    holders of CONTROL over its Partition object do to it."""
    return Or(has(r, READ), And(isEP(o), Or(has(r, WRITE), has(r, GRANT))),
              And(isPart(o), partOf(o) == p))


def manifest_axioms(grant_transitive=False):
    """What a checked manifest guarantees about its seed, authority and
    channel graph (for an arbitrary manifest: these are the only facts
    assumed)."""
    s = Const("s", Slot)
    p, q, x = Consts("p q x", Part)
    o, e = Consts("o e", Obj)
    f = Const("f", Frame)
    ax = [
        # Seeds lie within the authority; a seed names a valid right set.
        ForAll([s], Implies(seeded(s), sub(srights(s), Auth(owner(s), sobj(s))))),
        # Grant closure: what p may hold with DERIVE, a partition that
        # receives on an endpoint p may GRANT through may hold too.
        ForAll([p, q, e, o], Implies(
            And(isEP(e), has(Auth(p, e), GRANT), has(Auth(q, e), READ),
                has(Auth(p, o), DERIVE)),
            sub(Auth(p, o), Auth(q, o)))),
        # The channel graph contains every flow the authority allows.
        ForAll([p, q, o], Implies(
            And(p != q, modifies(Auth(p, o), o), observes(q, Auth(q, o), o)),
            Chan(p, q))),
        # A Partition object's controller: the partition named is affected.
        ForAll([p, o], Implies(And(isPart(o), has(Auth(p, o), CONTROL), partOf(o) != p),
                               Chan(p, partOf(o)))),
        # Memory: a partition maps its RAM and the shared regions naming it,
        # and RAM is private.
        ForAll([p, f], Implies(Ram(p, f), Mapped(p, f))),
        ForAll([p, q, f], Implies(And(Ram(p, f), p != q), Not(Mapped(q, f)))),
        ForAll([p, q, f], Implies(And(Mapped(p, f), Mapped(q, f), p != q),
                                  And(Shared(f, p), Shared(f, q)))),
    ]
    if grant_transitive:
        # Optional condition on the manifest (see README: revoke's local
        # respect), the one the manifest compiler enforces
        # (tools/manifest/src/check/grants.rs). GReach contains every grant
        # hop (p may hold GRANT on an endpoint q may receive on, and holds
        # something derivable, without which it can pass nothing) and is
        # transitive; every pair it relates has a channel. A manifest the
        # compiler accepts satisfies these with GReach the transitive closure
        # of the hops.
        ax.append(ForAll([p, q, e, o], Implies(
            And(isEP(e), has(Auth(p, e), GRANT), has(Auth(q, e), READ), has(Auth(p, o), DERIVE)),
            GReach(p, q))))
        ax.append(ForAll([x, p, q], Implies(And(GReach(x, p), GReach(p, q)), GReach(x, q))))
        ax.append(ForAll([x, q], Implies(And(GReach(x, q), x != q), Chan(x, q))))
    return ax


# ---------------------------------------------------------------------------
# The state.

class State:
    FIELDS = ("valid", "obj", "rights", "badge", "parent", "root", "anc", "rootof", "toward")

    def __init__(self, name=None, **fields):
        if name is not None:
            self.valid = Function(name + ".valid", Slot, BoolSort())
            self.obj = Function(name + ".obj", Slot, Obj)
            self.rights = Function(name + ".rights", Slot, RightsS)
            self.badge = Function(name + ".badge", Slot, Badge)
            self.parent = Function(name + ".parent", Slot, Slot)
            self.root = Function(name + ".root", Slot, BoolSort())
            self.anc = Function(name + ".anc", Slot, Slot, BoolSort())
            self.rootof = Function(name + ".rootof", Slot, Slot)
            self.toward = Function(name + ".toward", Slot, Slot, Slot)
        for k, v in fields.items():
            setattr(self, k, v)

    def but(self, **changes):
        f = {k: getattr(self, k) for k in self.FIELDS}
        f.update(changes)
        return State(**f)


def A(f, *i):
    """Apply a state field (a z3 function or a closure) to its arguments."""
    return f(*i)


def Store(f, k, v):
    """f updated at k to v."""
    return lambda x: If(x == k, v, f(x))


def invariants(st):
    """The invariants, grouped by the property each belongs to; each a list
    of formulas over state `st`."""
    s, a, b, d = Consts("s a b d", Slot)
    v, r, o, rt = st.valid, st.rights, st.obj, st.root
    par = lambda x: A(st.parent, x)
    anc = lambda x, y: A(st.anc, x, y)
    rootof = lambda x: A(st.rootof, x)
    derived = lambda x: And(A(v, x), Not(A(rt, x)))
    inv = {}
    inv["tree"] = [
        # anc is the transitive closure of parent over valid derived slots.
        ForAll([a, d], Implies(anc(a, d), And(derived(d), Or(par(d) == a, anc(a, par(d)))))),
        ForAll([a, d], Implies(And(derived(d), Or(par(d) == a, anc(a, par(d)))), anc(a, d))),
        ForAll([a, d], Implies(anc(a, d), A(v, a))),
        ForAll([d], Not(anc(d, d))),
        ForAll([a, b, d], Implies(And(anc(a, b), anc(b, d)), anc(a, d))),
        # The ancestors of a slot form a chain (it is a tree).
        ForAll([a, b, d], Implies(And(anc(a, d), anc(b, d)),
                                  Or(a == b, anc(a, b), anc(b, a)))),
        # The path from an ancestor down: its child on the way.
        ForAll([a, d], Implies(anc(a, d), And(
            derived(A(st.toward, a, d)), par(A(st.toward, a, d)) == a,
            Or(A(st.toward, a, d) == d, anc(A(st.toward, a, d), d))))),
    ]
    inv["no-forgery"] = [
        # A root is exactly what the seed put in its slot.
        ForAll([s], Implies(And(A(v, s), A(rt, s)),
                            And(seeded(s), A(o, s) == sobj(s), A(r, s) == srights(s),
                                A(st.badge, s) == sbadge(s), rootof(s) == s))),
        # A derived capability has a valid parent ...
        ForAll([s], Implies(derived(s), A(v, par(s)))),
        # ... and traces back to a root.
        ForAll([s], Implies(derived(s),
                            And(A(v, rootof(s)), A(rt, rootof(s)), anc(rootof(s), s)))),
        # ... the same root as all its ancestors.
        ForAll([a, d], Implies(anc(a, d), If(A(rt, a), rootof(d) == a,
                                             rootof(d) == rootof(a)))),
        # Every held capability lies within the manifest's authority.
        ForAll([s], Implies(A(v, s), sub(A(r, s), Auth(owner(s), A(o, s))))),
    ]
    inv["attenuation"] = [
        ForAll([s], Implies(derived(s), And(
            A(o, s) == A(o, par(s)),
            sub(A(r, s), A(r, par(s))),
            Or(A(st.badge, s) == A(st.badge, par(s)), A(st.badge, par(s)) == NOBADGE)))),
        ForAll([a, d], Implies(anc(a, d), And(
            A(o, d) == A(o, a), sub(A(r, d), A(r, a)),
            Or(A(st.badge, d) == A(st.badge, a), A(st.badge, a) == NOBADGE)))),
    ]
    return inv


def flow_ok(st):
    """Flow within the manifest: every flow the held capabilities allow
    (one partition holds rights over an object that change it, another
    rights that see it) is an edge of the channel graph."""
    s1, s2 = Consts("s1 s2", Slot)
    v, r, o = st.valid, st.rights, st.obj
    return ForAll([s1, s2], Implies(
        And(A(v, s1), A(v, s2), A(o, s1) == A(o, s2), owner(s1) != owner(s2),
            modifies(A(r, s1), A(o, s1)), observes(owner(s2), A(r, s2), A(o, s2))),
        Chan(owner(s1), owner(s2))))


def all_inv(st):
    return [f for group in invariants(st).values() for f in group]


# ---------------------------------------------------------------------------
# Operations. Each returns (precondition, post-state).

def install(st, dst, src, rights, badge):
    """A child of `src` in the empty `dst` (CapSpace::install with a parent)."""
    a, d = Consts("a d", Slot)
    anc2 = (lambda a, d: Or(A(st.anc, a, d),
                             And(d == dst, Or(a == src, A(st.anc, a, src)))))
    return st.but(
        valid=Store(st.valid, dst, True),
        obj=Store(st.obj, dst, A(st.obj, src)),
        rights=Store(st.rights, dst, rights),
        badge=Store(st.badge, dst, badge),
        parent=Store(st.parent, dst, src),
        root=Store(st.root, dst, False),
        anc=anc2,
        rootof=Store(st.rootof, dst, If(A(st.root, src), src, A(st.rootof, src))),
        toward=lambda a, d: If(d == dst, If(a == src, dst, A(st.toward, a, src)),
                               A(st.toward, a, d)),
    )


def op_derive(st, mutant=None):
    """CapSpace::derive(partition, src, dst, rights, badge)."""
    p = Const("caller", Part)
    src, dst = Consts("src dst", Slot)
    rights = BitVec("req_rights", 6)
    badge = Const("req_badge", Badge)
    sr = A(st.rights, src)
    sb = A(st.badge, src)
    pre = [owner(src) == p, owner(dst) == p, A(st.valid, src), Not(A(st.valid, dst)),
           has(sr, DERIVE),
           Or(badge == NOBADGE, sb == NOBADGE)]
    if mutant != "derive-adds-right":
        pre.append(sub(rights, sr))
    newbadge = If(badge == NOBADGE, sb, badge)
    if mutant == "derive-rebadges":
        newbadge = badge
        pre[-1] = True
    return And(pre), install(st, dst, src, rights, newbadge)


def op_transfer(st, mutant=None, tag=""):
    """A capability sent with a message (ipc.rs: `send`/`take_message` ->
    CapSpace::transfer): the sender's endpoint capability has WRITE and GRANT, the
    receiver receives on the same endpoint (READ), the capability sent has
    DERIVE, the receive slot the receiver named is empty."""
    p, q = Consts(" ".join(n + tag for n in ("sender", "receiver")), Part)
    ep, rs, frm, to = Consts(" ".join(n + tag for n in ("ep_slot", "recv_slot", "from", "to")),
                             Slot)
    e = A(st.obj, ep)
    pre = [owner(ep) == p, A(st.valid, ep), isEP(e), has(A(st.rights, ep), WRITE),
           has(A(st.rights, ep), GRANT),
           owner(rs) == q, A(st.valid, rs), A(st.obj, rs) == e, has(A(st.rights, rs), READ),
           owner(frm) == p, A(st.valid, frm),
           owner(to) == q, Not(A(st.valid, to))]
    if mutant != "transfer-without-derive":
        pre.append(has(A(st.rights, frm), DERIVE))
    return And(pre), install(st, to, frm, A(st.rights, frm), A(st.badge, frm))


def op_revoke(st, mutant=None, tag=""):
    """CapSpace::revoke(partition, slot): every descendant emptied, in any
    partition's table; the slot itself stays."""
    p = Const("caller" + tag, Part)
    c = Const("revoked" + tag, Slot)
    s, a, d = Consts("s a d", Slot)
    pre = And(owner(c) == p, A(st.valid, c))
    gone = lambda x: A(st.anc, c, x)
    if mutant == "revoke-spares-other-tables":
        gone = lambda x: And(A(st.anc, c, x), owner(x) == p)
    valid2 = (lambda s: And(A(st.valid, s), Not(gone(s))))
    anc2 = (lambda a, d: And(A(st.anc, a, d), Not(gone(d))))
    return pre, st.but(valid=valid2, anc=anc2), c


def op_revoke_leaf(st, mutant=None):
    """One iteration of `revoke_descendants`'s loop: a descendant of `top`
    with no children is unlinked and emptied."""
    top, leaf = Consts("top leaf", Slot)
    s, a, d = Consts("s a d", Slot)
    pre = And(A(st.valid, top), A(st.anc, top, leaf),
              ForAll([s], Not(And(A(st.valid, s), Not(A(st.root, s)),
                                  A(st.parent, s) == leaf))))
    if mutant == "revoke-step-not-leaf":
        pre = And(A(st.valid, top), A(st.anc, top, leaf))
    valid2 = Store(st.valid, leaf, False)
    anc2 = (lambda a, d: And(A(st.anc, a, d), d != leaf))
    return pre, st.but(valid=valid2, anc=anc2)


def op_delete_derived(st):
    """CapSpace::delete of a derived capability: emptied; its children move
    up to its parent (`delete_slot`, the `Some(up)` arm)."""
    p = Const("caller", Part)
    c = Const("deleted", Slot)
    s, a, d = Consts("s a d", Slot)
    pre = And(owner(c) == p, A(st.valid, c), Not(A(st.root, c)))
    up = A(st.parent, c)
    parent2 = (lambda s: If(A(st.parent, s) == c, up, A(st.parent, s)))
    anc2 = (lambda a, d: And(A(st.anc, a, d), a != c, d != c))
    toward2 = (lambda a, d: If(A(st.toward, a, d) == c, A(st.toward, c, d), A(st.toward, a, d)))
    return pre, st.but(valid=Store(st.valid, c, False), parent=parent2, anc=anc2,
                       toward=toward2)


def op_delete_root(st):
    """CapSpace::delete of a root: its descendants are revoked, then it is
    emptied (`delete_slot`, the `None` arm)."""
    p = Const("caller", Part)
    c = Const("deleted", Slot)
    s, a, d = Consts("s a d", Slot)
    pre = And(owner(c) == p, A(st.valid, c), A(st.root, c))
    gone = lambda x: Or(x == c, A(st.anc, c, x))
    valid2 = (lambda s: And(A(st.valid, s), Not(gone(s))))
    anc2 = (lambda a, d: And(A(st.anc, a, d), Not(gone(d)), Not(gone(a))))
    return pre, st.but(valid=valid2, anc=anc2)


def op_reset(st, nearest, tag=""):
    """CapSpace::reset_partition(P), as a restart does (fault.rs,
    `stop_or_restart`): every slot of P deleted in slot order, then P's
    seeds put back. The net effect, which the order does not change:
    - P's slots hold exactly their seeds, as roots;
    - another partition's capability survives unless it descends from a
      root of P (deleting a root revokes it);
    - a survivor whose parent was in P moves up to its nearest ancestor
      outside P (`nearest`, an uninterpreted choice constrained below).
    The ghost `toward` of the new tree is chosen, not computed: its
    invariant is assumed after a reset (every finite tree has such a
    witness), not proved.
    Returns (restarted partition, post, constraints on `nearest`)."""
    P = Const("restarted", Part)
    s, a, d, b = Consts("s a d b", Slot)
    inP = lambda x: owner(x) == P
    valid2 = (lambda s: If(inP(s), seeded(s),
                            And(A(st.valid, s),
                                Or(A(st.root, s), Not(inP(A(st.rootof, s)))))))
    keep = lambda x: And(A(valid2, x), Not(inP(x)))
    moved = lambda x: And(Not(A(st.root, x)), inP(A(st.parent, x)))
    parent2 = (lambda s: If(moved(s), nearest(s), A(st.parent, s)))
    # The nearest ancestor outside P: an ancestor outside P with only P's
    # slots between.
    cons = [ForAll([d], Implies(And(keep(d), moved(d)), And(
        A(st.anc, nearest(d), d), Not(inP(nearest(d))),
        ForAll([b], Implies(And(A(st.anc, nearest(d), b), A(st.anc, b, d)), inP(b))))))]
    anc2 = (lambda a, d: And(A(st.anc, a, d), keep(a), keep(d)))
    post = st.but(
        valid=valid2,
        obj=(lambda s: If(inP(s), sobj(s), A(st.obj, s))),
        rights=(lambda s: If(inP(s), srights(s), A(st.rights, s))),
        badge=(lambda s: If(inP(s), sbadge(s), A(st.badge, s))),
        root=(lambda s: Or(inP(s), A(st.root, s))),
        parent=parent2,
        anc=anc2,
        rootof=(lambda s: If(inP(s), s, A(st.rootof, s))),
        toward=Function("reset.toward" + tag, Slot, Slot, Slot),
    )
    cons.append(invariants(post)["tree"][-1])
    return P, post, cons
