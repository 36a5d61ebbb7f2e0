// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `hv-proofs-refine`: exhaustive bounded checking of `hv-core`'s real step
//! functions on a small system, against an executable specification, with
//! the security properties of `hv_core::state::properties` checked in every
//! state reached, and a two-run noninterference check. See `README.md`.
//!
//! `cargo run --release -p hv-proofs-refine -- [--quick|--full]` prints one
//! JSON object per line per check on stdout (`property`, `method`, `scope`,
//! `states`, `result`, `seconds`, and `detail` on a failure) and exits
//! non-zero if any fails; progress and counterexamples go to stderr.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use hv_proofs_refine::{check, system};

/// How deep each check goes.
struct Profile {
    name: &'static str,
    /// Steps of the refinement search.
    depth: usize,
    /// Noninterference: steps before the high partition's step that one
    /// run takes, and steps after it; one check per entry.
    ni: &'static [(usize, usize)],
}

const QUICK: Profile = Profile {
    name: "quick",
    depth: 4,
    ni: &[(1, 2)],
};

const FULL: Profile = Profile {
    name: "full",
    depth: 5,
    ni: &[(2, 2), (1, 3)],
};

/// A string as a JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn report(
    property: &str,
    method: &str,
    scope: &str,
    states: usize,
    seconds: f64,
    failure: Option<String>,
) -> bool {
    let result = if failure.is_some() { "fail" } else { "pass" };
    let mut line = format!(
        "{{\"property\":{},\"method\":{},\"scope\":{},\"states\":{states},\"result\":\"{result}\",\"seconds\":{seconds:.3}",
        json(property),
        json(method),
        json(scope)
    );
    if let Some(detail) = &failure {
        line.push_str(&format!(",\"detail\":{}", json(detail)));
        eprintln!("FAIL {property}\n  counterexample: {detail}");
    }
    line.push('}');
    println!("{line}");
    failure.is_none()
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: hv-proofs-refine [--quick|--full] [--depth N] [--ni BASE DEPTH]\n  \
         --quick: search depth {}, noninterference (steps before, after) {:?} (the default)\n  \
         --full: search depth {}, noninterference {:?}",
        QUICK.depth, QUICK.ni, FULL.depth, FULL.ni
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut chosen = &QUICK;
    let mut depth = None;
    let mut ni: Option<&'static [(usize, usize)]> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse::<usize>().ok());
        match arg.as_str() {
            "--quick" => chosen = &QUICK,
            "--full" => chosen = &FULL,
            "--depth" => match number() {
                Some(n) => depth = Some(n),
                None => return usage(),
            },
            "--ni" => match (number(), number()) {
                (Some(b), Some(d)) => ni = Some(Vec::leak(vec![(b, d)])),
                _ => return usage(),
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let profile = &Profile {
        name: chosen.name,
        depth: depth.unwrap_or(chosen.depth),
        ni: ni.unwrap_or(chosen.ni),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    let ctx = check::Context::new();
    let system = format!(
        "{} partitions, slots 0..=7 (and 64) named, {} endpoints, {} notifications, 2 interrupts, {} cores, {} actions per state",
        system::PARTITIONS,
        system::ENDPOINTS,
        system::NOTIFICATIONS,
        system::CORES,
        ctx.alphabet()
    );
    let mut ok = true;

    eprintln!("hv-proofs-refine ({}): the seed's channels", profile.name);
    let started = std::time::Instant::now();
    ok &= report(
        check::CHANNELS,
        "closure of the seed under transfer, against the declared graph",
        &system,
        1,
        started.elapsed().as_secs_f64(),
        check::seed_channels_declared().err(),
    );

    eprintln!(
        "hv-proofs-refine ({}): breadth-first search to depth {} on {threads} threads",
        profile.name, profile.depth
    );
    let outcome = check::search(&ctx, profile.depth, threads);
    eprintln!("  reached (steps):");
    for (what, n) in &outcome.reached {
        eprintln!("    {what}: {n}");
    }
    let scope = format!("{system}, depth {}", outcome.depth);
    for property in check::PROPERTIES {
        let method = if property == check::REFINEMENT {
            "BFS over the real hv-core step functions, each step against the executable spec"
        } else {
            "BFS over the real hv-core step functions, checked in every state (and step) reached"
        };
        ok &= report(
            property,
            method,
            &scope,
            outcome.states,
            outcome.seconds,
            outcome
                .failures
                .get(property)
                .map(check::Counterexample::text),
        );
    }

    for &(base, after) in profile.ni {
        eprintln!(
            "hv-proofs-refine ({}): noninterference, {base} steps, a step of p{}, {after} more",
            profile.name,
            system::HIGH,
        );
        let ni = check::noninterference(&ctx, base, after, threads);
        ok &= report(
            check::NONINTERFERENCE,
            "two runs of the real hv-core step functions, exhaustive over action sequences",
            &format!(
                "{system}, every state within {base} steps of boot, one step of p{} in one run only, then every {after} common steps; kicks taken at once",
                system::HIGH,
            ),
            ni.states,
            ni.seconds,
            ni.failures
                .get(check::NONINTERFERENCE)
                .map(check::Counterexample::text),
        );
    }
    eprintln!(
        "hv-proofs-refine: {} ({} states and {} steps in the search)",
        if ok {
            "all checks pass"
        } else {
            "SOME CHECKS FAIL"
        },
        outcome.states,
        outcome.steps
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
