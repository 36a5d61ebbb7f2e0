#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Runs the z3 proofs about the capability design (proofs/model/README.md).

    python3 proofs/model/prove.py [--quick|--full] [--mutants]

Prints one JSON object per check on stdout (property, method, scope,
states, result, seconds, and detail on a failure); exits 1 if any check
fails. With --mutants, runs only the deliberately broken variants: each
passes when z3 refutes it (finds a counterexample).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from z3 import (And, Consts, Const, ForAll, Implies, Not, Or, Solver, sat, unsat,
                    unknown, set_param, is_true, is_and, Context,
                    BoolVal, substitute)
except ImportError:
    print(json.dumps({
        "property": "z3 is installed", "method": "import", "scope": "-", "states": None,
        "result": "fail", "seconds": 0.0,
        "detail": "python module z3 missing: pip install -r proofs/model/requirements.txt"}))
    sys.exit(1)

import capmodel as M
import noninterference as NI

SCOPE = "unbounded: any number of partitions, slots, objects, badges, frames"
FINITE_SCOPE_REF = ("counterexample searched among finite models: 3 partitions, 5 slots, "
                    "3 objects, 2 badges")
METHOD = "z3 inductive invariant, unbounded"
POST = "z3 proof of an operation's postcondition, unbounded"
AXIOMS = "z3 proof from the manifest axioms, unbounded"
INIT = "z3 proof (initial state), unbounded"


def emit(results, prop, method, scope, ok, seconds, detail=None):
    rec = {"property": prop, "method": method, "scope": scope, "states": None,
           "result": "pass" if ok else "fail", "seconds": round(seconds, 3)}
    if detail:
        rec["detail"] = detail
    print(json.dumps(rec), flush=True)
    results.append(ok)


def solve(facts, goal_negated, timeout_ms):
    """Checks facts /\\ goal_negated. Quantifier instantiation is sensitive
    to the random seed, so an unknown is retried with other seeds (each
    attempt gets a slice of the time; any answer is final, since sat and
    unsat do not depend on the seed)."""
    why = ""
    # Attempts of growing length (2, 2, 4, 4, 8, 8, ... s), each with a new
    # seed, until the budget is spent: a seed that leads z3 astray costs
    # little.
    attempts, spent, ms = [], 0, 2000
    while spent < timeout_ms:
        for _ in range(2):
            slice_ms = min(ms, timeout_ms - spent)
            if slice_ms <= 0:
                break
            attempts.append((len(attempts), slice_ms))
            spent += slice_ms
        ms *= 2
    # Each check in a fresh z3 context, so that its search does not depend
    # on what earlier checks left in the shared one.
    for seed, ms in attempts:
        ctx = Context()
        s = Solver(ctx=ctx)
        s.set("timeout", ms)
        s.set("random_seed", seed)
        # Model-based instantiation only: e-matching loops on the fixpoint
        # equation of `anc` (each instance names a new parent term).
        s.set("smt.ematching", False)
        s.add([(BoolVal(f) if isinstance(f, bool) else f).translate(ctx) for f in facts])
        if goal_negated is not None:
            s.add(goal_negated.translate(ctx))
        r = s.check()
        if r != unknown:
            return r, (s.model() if r == sat else None), ""
        why = s.reason_unknown()
    return unknown, None, why




def render(model, states, limit=2500):
    """A counterexample over capability states, as a table per state: each
    slot that is valid in one of them, with its table (owner), capability
    and parent. (The model lives in the check's own z3 context: each term
    is built in the main one, with a placeholder for the slot, and
    translated.)"""
    try:
        ctx = model.ctx
        x = Const("render_slot", M.Slot)
        xc = x.translate(ctx)
        slots = model.get_universe(xc.sort()) or []

        def ev(term, slot):
            t = substitute(term.translate(ctx), (xc, slot))
            return model.eval(t, model_completion=True)

        rows = []
        for label, st in states:
            cells = []
            for s in slots:
                if not is_true(ev(st.valid(x), s)):
                    continue
                root = is_true(ev(st.root(x), s))
                bits = ev(st.rights(x), s).as_long()
                rights = "".join(n for i, n in enumerate("RWXGDC") if bits & (1 << i)) or "-"
                badge = "none" if is_true(ev(st.badge(x) == M.NOBADGE, s)) else \
                    str(ev(st.badge(x), s))
                cells.append("%s{table %s, obj %s, rights %s, badge %s, %s}" % (
                    s, ev(M.owner(x), s), ev(st.obj(x), s), rights, badge,
                    "root" if root else "parent " + str(ev(st.parent(x), s))))
            rows.append("%s: %s" % (label, "; ".join(cells) if cells else "no capability"))
        text = " || ".join(rows)
        consts = [str(d) + " = " + str(model[d]) for d in model.decls() if d.arity() == 0
                  and d.name() in ("caller", "sender", "receiver", "src", "dst", "from", "to",
                                   "revoked", "deleted", "req_rights", "req_badge", "u", "w",
                                   "x", "restarted", "top", "leaf")]
        text = ", ".join(consts) + " || " + text
        return text[:limit] + ("..." if len(text) > limit else "")
    except Exception:  # a model that does not fit the table: show it raw
        return short_model(model)


def short_model(model, limit=1500):
    text = str(model).replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


class Runner:
    def __init__(self, timeout_ms):
        self.timeout = timeout_ms
        self.results = []

    def prove(self, prop, facts, goal, scope=SCOPE, method=METHOD, states=None):
        """facts => goal, for every model: unsat of facts /\\ not goal, one
        conjunct of the goal at a time."""
        t = time.monotonic()
        detail = None
        for i, g in enumerate(goal if isinstance(goal, list) else [goal]):
            r, model, why = solve(facts, Not(g), self.timeout)
            if r == sat:
                detail = "conjunct %d: counterexample: %s" % (
                    i, render(model, states) if states else short_model(model))
            elif r == unknown:
                detail = "conjunct %d: z3 returned unknown: %s" % (i, why)
            if detail:
                break
        emit(self.results, prop, method, scope, detail is None, time.monotonic() - t, detail)

    def satisfiable(self, prop, facts, scope=None):
        """Sanity: the premises of a proof have a model (it is not vacuous).
        The model is searched for among small finite ones (FINITE), which
        is enough: any model shows the premises consistent."""
        t = time.monotonic()
        r, _, why = solve(facts + finite_domains(), None, self.timeout)
        dt = time.monotonic() - t
        emit(self.results, prop, "z3 satisfiability (premises not vacuous)",
             scope or "a model searched among " + FINITE_SCOPE,
             r == sat, dt, None if r == sat else "premises %s %s" % (r, why))

    def refute(self, prop, facts, goal, scope=FINITE_SCOPE_REF, states=None):
        """A mutant: z3 must find a counterexample to facts => goal (among
        small finite models: a concrete one)."""
        t = time.monotonic()
        r, model, why = solve(facts + finite_domains(),
                              Not(And(goal)) if isinstance(goal, list) else Not(goal),
                              self.timeout)
        dt = time.monotonic() - t
        detail = ("counterexample: " + (render(model, states) if states else
                                        short_model(model))) if r == sat else \
            "not refuted: %s %s" % (r, why)
        emit(self.results, prop, "z3 counterexample search (mutant)", scope, r == sat, dt,
             detail)


# Sizes of the finite models searched by the sanity checks, the mutants and
# the documented limits.
FINITE = (("Part", 3), ("Slot", 5), ("Obj", 3), ("Badge", 2), ("Frame", 2), ("Val", 2),
          ("Act", 1))
FINITE_SCOPE = "finite models: 3 partitions, 5 slots, 3 objects, 2 badges, 2 frames"
# The run from boot in the documented limit needs 7 slots.
GAP_SIZES = (("Part", 3), ("Slot", 8), ("Obj", 3), ("Badge", 2), ("Frame", 2), ("Val", 2),
             ("Act", 1))


def finite_domains(sizes=FINITE):
    sorts = {"Part": M.Part, "Slot": M.Slot, "Obj": M.Obj, "Badge": M.Badge,
             "Frame": M.Frame, "Val": M.Val, "Act": NI.Act}
    out = []
    for name, n in sizes:
        elems = [Const("%s_%d" % (name.lower(), i), sorts[name]) for i in range(n)]
        x = Const("fin_" + name.lower(), sorts[name])
        out.append(ForAll([x], Or([x == e for e in elems])))
    return out


def interesting(st):
    """For the sanity checks: a state with a derived capability whose
    parent lies in another partition's table (a transfer happened)."""
    a, b = Consts("wit_a wit_b", M.Slot)
    return [M.A(st.valid, b), Not(M.A(st.root, b)), M.A(st.parent, b) == a,
            M.owner(a) != M.owner(b)]


def reset_lemmas(st, post, facts):
    """For the restart: a lemma (proved here, then assumed) and the fixpoint
    equation's forward half split on whether a slot's parent was in the
    restarted partition (z3 does not find the split itself in time).
    Returns (lemma checks, extra facts, replacement goals for "tree")."""
    P = Const("restarted", M.Part)
    x, y, a, d = Consts("lx ly ga gd", M.Slot)
    inP = lambda z: M.owner(z) == P
    keep = lambda z: And(post.valid(z), Not(inP(z)))
    lemma = ForAll([x, y], Implies(And(st.anc(x, y), keep(y), Not(inP(x))), keep(x)))
    moved = lambda z: And(Not(st.root(z)), inP(st.parent(z)))
    derived2 = lambda z: And(post.valid(z), Not(post.root(z)))
    fwd = Implies(post.anc(a, d), And(derived2(d), Or(post.parent(d) == a,
                                                       post.anc(a, post.parent(d)))))
    tree = M.invariants(post)["tree"]
    goals = [ForAll([a, d], Implies(moved(d), fwd)),
             ForAll([a, d], Implies(Not(moved(d)), fwd))] + tree[1:]
    nearest = M.Function("nearest", M.Slot, M.Slot)
    lemma2 = ForAll([a, d], Implies(And(moved(d), keep(d), st.anc(a, d), keep(a)),
                                    Or(a == nearest(d), st.anc(a, nearest(d)))))
    checks = [("restart lemma: a capability outside the partition whose descendant "
               "survives survives", facts, lemma),
              ("restart lemma: a survivor's new parent is below every surviving ancestor",
               facts + [lemma], lemma2)]
    return checks, [lemma, lemma2], {"tree": goals}


def cap_ops():
    """(name, builder) for every operation whose post-state is checked
    against every invariant. A builder takes a pre-state and returns
    (pre, post, extra facts)."""
    def derive(st):
        pre, post = M.op_derive(st)
        return pre, post, []

    def transfer(st):
        pre, post = M.op_transfer(st)
        return pre, post, []

    def revoke(st):
        pre, post, _ = M.op_revoke(st)
        return pre, post, []

    def revoke_leaf(st):
        pre, post = M.op_revoke_leaf(st)
        return pre, post, []

    def delete_derived(st):
        pre, post = M.op_delete_derived(st)
        return pre, post, []

    def delete_root(st):
        pre, post = M.op_delete_root(st)
        return pre, post, []

    def reset(st):
        nearest = M.Function("nearest", M.Slot, M.Slot)
        _, post, cons = M.op_reset(st, nearest)
        return True, post, cons
    reset.lemmas = reset_lemmas

    return [
        ("derive", derive),
        ("transfer over IPC", transfer),
        ("revoke", revoke),
        ("revoke, one step of revoke_descendants", revoke_leaf),
        ("delete a derived capability", delete_derived),
        ("delete a root", delete_root),
        ("restart: reset_partition reseeds the table", reset),
    ]


def run_invariants(run):
    axioms = M.manifest_axioms()
    groups = ["tree", "no-forgery", "attenuation"]
    st = M.State("s")
    inv = M.all_inv(st)
    # The initial state (the seed at boot) satisfies every invariant.
    s = Const("s", M.Slot)
    boot = st.but(
        valid=M.seeded, obj=M.sobj, rights=M.srights, badge=M.sbadge,
        root=lambda x: M.BoolVal(True), anc=lambda a, d: M.BoolVal(False),
        rootof=lambda x: x)
    run.prove("boot: the seed satisfies every invariant and flow within the manifest",
              axioms, M.all_inv(boot) + [M.flow_ok(boot)], method=INIT)
    run.prove("flow within the manifest follows from the invariants (any state)",
              axioms + inv, M.flow_ok(st), method="z3 proof (consequence of the invariants), "
              "unbounded")
    for name, build in cap_ops():
        pre, post, extra = build(st)
        facts = axioms + inv + [pre] + extra
        run.satisfiable("sanity: premises of '%s' are satisfiable" % name,
                        facts + interesting(st))
        goals = M.invariants(post)
        if hasattr(build, "lemmas"):
            checks, more, split = build.lemmas(st, post, facts)
            for prop, f, g in checks:
                run.prove(prop, f, g)
            facts = facts + more
            goals.update(split)
        for g in groups:
            run.prove("%s preserves %s" % (name, g), facts, goals[g],
                      states=[("before", st), ("after", post)])
        run.prove("%s preserves flow within the manifest" % name, facts, M.flow_ok(post),
                  states=[("before", st), ("after", post)])


def revocation_completeness(st, post, c, exclude_self=False):
    s, d = Consts("rc_s rc_d", M.Slot)
    gone = lambda x: Or(M.A(st.anc, c, x), x == c) if exclude_self else M.A(st.anc, c, x)
    return [
        # every descendant is emptied
        ForAll([s], Implies(M.A(st.anc, c, s), Not(M.A(post.valid, s)))),
        # nothing else changes
        ForAll([s], Implies(And(M.A(st.valid, s), Not(gone(s))),
                            And(M.A(post.valid, s), M.A(post.obj, s) == M.A(st.obj, s),
                                M.A(post.rights, s) == M.A(st.rights, s),
                                M.A(post.badge, s) == M.A(st.badge, s),
                                M.A(post.parent, s) == M.A(st.parent, s)))),
        ForAll([s], Implies(Not(M.A(st.valid, s)), Not(M.A(post.valid, s)))),
        # and afterwards nothing valid descends from it
        ForAll([d], Implies(M.A(post.valid, d), Not(M.A(post.anc, c, d)))),
    ]


def run_revocation(run):
    axioms = M.manifest_axioms()
    st = M.State("s")
    inv = M.all_inv(st)
    pre, post, c = M.op_revoke(st)
    run.prove("revocation completeness: revoke empties every descendant, in every table, "
              "and nothing else", axioms + inv + [pre], revocation_completeness(st, post, c),
              method=POST)
    # revoke_descendants, the loop: each step empties one descendant of the
    # top and changes nothing else; when the top has no children left it
    # has no descendants. With the invariants preserved by each step (above),
    # the loop ends in the net effect `op_revoke` has.
    pre, post = M.op_revoke_leaf(st)
    top, leaf = Consts("top leaf", M.Slot)
    s = Const("rl_s", M.Slot)
    run.prove("revoke_descendants: one step empties one descendant of the top and nothing "
              "else", axioms + inv + [pre],
              [M.A(st.anc, top, leaf), Not(M.A(post.valid, leaf)),
               ForAll([s], Implies(s != leaf, M.A(post.valid, s) == M.A(st.valid, s)))],
              method=POST)
    d = Const("rl_d", M.Slot)
    run.prove("revoke_descendants: when the top has no children left, it has no descendants "
              "(the walk ends in revoke's net effect)",
              axioms + inv + [M.A(st.valid, top),
                              ForAll([s], Not(And(M.A(st.valid, s), Not(M.A(st.root, s)),
                                                  M.A(st.parent, s) == top)))],
              ForAll([d], Not(M.A(st.anc, top, d))), method=POST)
    pre, post = M.op_delete_root(st)
    c = Const("deleted", M.Slot)
    run.prove("revocation completeness: deleting a root empties it and every descendant, "
              "and nothing else", axioms + inv + [pre],
              revocation_completeness(st, post, c, exclude_self=True), method=POST)
    # Restart: what survives in other partitions' tables.
    nearest = M.Function("nearest", M.Slot, M.Slot)
    P, post, cons = M.op_reset(st, nearest)
    s, r = Consts("rs_s rs_r", M.Slot)
    run.prove("restart: no capability descending from the restarted partition's seed "
              "survives elsewhere, every other one does, and its table is exactly its seed",
              axioms + inv + cons,
              [ForAll([s, r], Implies(And(M.owner(r) == P, M.A(st.root, r),
                                          M.A(st.anc, r, s), M.owner(s) != P),
                                      Not(M.A(post.valid, s)))),
               ForAll([s], Implies(And(M.owner(s) != P, M.A(st.valid, s),
                                       Not(ForAll([r], Implies(M.A(st.anc, r, s),
                                                               Or(M.owner(r) != P,
                                                                  Not(M.A(st.root, r))))))
                                       == False),
                                   M.A(post.valid, s))),
               ForAll([s], Implies(M.owner(s) == P,
                                   And(M.A(post.valid, s) == M.seeded(s),
                                       Implies(M.seeded(s), M.A(post.root, s)))))],
              method=POST)


def run_memory(run):
    axioms = M.manifest_axioms()
    p, q = Consts("mp mq", M.Part)
    f = Const("mf", M.Frame)
    run.prove("memory: partitions' maps intersect only on frames a shared region declares "
              "for both (no capability operation changes a stage-2 map)", axioms,
              ForAll([p, q, f], Implies(And(M.Mapped(p, f), M.Mapped(q, f), p != q),
                                        And(M.Shared(f, p), M.Shared(f, q)))),
              method=AXIOMS)
    P = Const("restarted", M.Part)
    run.prove("memory: a restart's reload writes only the restarted partition's RAM, "
              "which no other partition maps", axioms,
              ForAll([q, f], Implies(And(M.Ram(P, f), q != P), Not(M.Mapped(q, f)))),
              method=AXIOMS)


def run_noninterference(run):
    for prop, facts, goal in NI.obligations(full=run.full):
        # A view is a conjunction: proved one conjunct at a time.
        goal = list(goal.children()) if is_and(goal) else goal
        run.prove(prop, facts, goal, scope=SCOPE + "; Rushby/seL4 unwinding, policy = "
                  "manifest channel graph (uninterpreted)",
                  method="z3 unwinding condition, unbounded")
    for prop, facts in NI.sanity():
        run.satisfiable(prop, facts)
    for prop, facts, goal, states in NI.known_gaps():
        # A documented limit of the design: z3 must still find the
        # counterexample (if it stops finding one, the README is stale).
        t = time.monotonic()
        r, model, why = solve(facts + finite_domains(GAP_SIZES), Not(And(goal)), run.timeout)
        emit(run.results, prop, "z3 counterexample search (documented limit)",
             "counterexample searched among finite models: 3 partitions, 8 slots, 3 objects",
             r == sat, time.monotonic() - t,
             ("counterexample: " + render(model, states)) if r == sat else
             "no counterexample any more (%s %s): update proofs/model/README.md" % (r, why))


def run_mutants(run, full):
    axioms = M.manifest_axioms()
    st = M.State("s")
    inv = M.all_inv(st)
    pre, post = M.op_derive(st, mutant="derive-adds-right")
    run.refute("mutant: derive adds a right is refuted (attenuation)",
               axioms + inv + [pre], M.invariants(post)["attenuation"],
               states=[("before", st), ("after", post)])
    pre, post = M.op_derive(st, mutant="derive-rebadges")
    run.refute("mutant: derive re-badges a badged capability is refuted (attenuation)",
               axioms + inv + [pre], M.invariants(post)["attenuation"],
               states=[("before", st), ("after", post)])
    pre, post = M.op_transfer(st, mutant="transfer-without-derive")
    run.refute("mutant: transfer of a capability without DERIVE is refuted "
               "(flow within the manifest)", axioms + inv + [pre], M.flow_ok(post),
               states=[("before", st), ("after", post)])
    pre, post, c = M.op_revoke(st, mutant="revoke-spares-other-tables")
    run.refute("mutant: revoke that spares descendants in other partitions' tables is "
               "refuted (revocation completeness)", axioms + inv + [pre],
               revocation_completeness(st, post, c), states=[("before", st), ("after", post)])
    pre, post = M.op_revoke_leaf(st, mutant="revoke-step-not-leaf")
    run.refute("mutant: a step of revoke_descendants that empties a slot with children is "
               "refuted (tree, no forgery: its children are orphaned)",
               axioms + inv + [pre, M.A(st.valid, Const("orphan", M.Slot)),
                               Not(M.A(st.root, Const("orphan", M.Slot))),
                               M.A(st.parent, Const("orphan", M.Slot)) == Const("leaf", M.Slot)],
               M.invariants(post)["tree"] + M.invariants(post)["no-forgery"],
               states=[("before", st), ("after", post)])
    if full:
        run.refute("mutant: revoke that spares descendants in other partitions' tables is "
                   "refuted (tree: an orphan survives)", axioms + inv + [pre],
                   M.invariants(post)["tree"] + M.invariants(post)["no-forgery"],
                   states=[("before", st), ("after", post)])
    for prop, facts, goal in NI.mutants():
        run.refute(prop, facts, goal)


def main(argv):
    quick = "--full" not in argv
    mutants = "--mutants" in argv
    run = Runner(timeout_ms=20000 if quick else 120000)
    run.full = not quick
    if mutants:
        run_mutants(run, not quick)
    else:
        run_invariants(run)
        run_revocation(run)
        run_memory(run)
        run_noninterference(run)
    return 0 if all(run.results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
