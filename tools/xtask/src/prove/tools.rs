// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What `cargo xtask prove` installs, the project's way: into the target
//! directory, never half-written.
//!
//! - z3 (`z3-solver` from PyPI, pinned in `proofs/model/requirements.txt`):
//!   a Python virtual environment `target/tools/z3-venv`, made in a
//!   temporary folder beside it and renamed into place only once pip has
//!   installed everything; a copy of the requirements inside it says what
//!   it was made from, so a change to them makes it again.
//! - spin: Debian 12's `spin` package for the host, through
//!   [`crate::debian`]'s cache (`target/spin/<key>/spin`), which is atomic
//!   the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::debian::{self, Archive, Fetched, HOST_ARCHITECTURE, Recipe, Resolve, Source, Sources};
use crate::{Result, error};

/// The host's `python3`.
pub(crate) fn python3() -> Result<PathBuf> {
    crate::setup::which("python3").ok_or_else(|| {
        error!(
            "prove: python3 is not installed; the z3 proofs and the spin models are run by \
             Python 3 scripts (on Debian: apt-get install python3 python3-venv)"
        )
    })
}

/// The virtual environment's Python, with z3-solver installed.
pub(crate) fn z3_python() -> Result<PathBuf> {
    let root = crate::root();
    let requirements = root.join("proofs/model/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| error!("prove: cannot read {}: {e}", requirements.display()))?;
    let tools = debian::target_dir().join("tools");
    let venv = tools.join("z3-venv");
    let python = venv.join("bin/python3");
    let made_from = std::fs::read_to_string(venv.join("requirements.txt")).ok();
    if python.is_file() && made_from.as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let host = python3()?;
    std::fs::create_dir_all(&tools)?;
    let temporary = tools.join(format!(".z3-venv-tmp-{}", std::process::id()));
    let made = make_venv(&host, &temporary, &requirements, &wanted);
    let placed = made.and_then(|()| {
        if venv.exists() {
            std::fs::remove_dir_all(&venv)
                .map_err(|e| error!("prove: cannot remove the old {}: {e}", venv.display()))?;
        }
        std::fs::rename(&temporary, &venv)
            .map_err(|e| error!("prove: cannot move the new venv into place: {e}"))
    });
    if temporary.exists() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    placed?;
    eprintln!("prove: z3-solver installed in {}", venv.display());
    Ok(python)
}

fn make_venv(host: &Path, dir: &Path, requirements: &Path, wanted: &str) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    eprintln!("prove: making a Python virtual environment for z3-solver");
    let status = Command::new(host)
        .args(["-m", "venv"])
        .arg(dir)
        .status()
        .map_err(|e| error!("prove: cannot run {}: {e}", host.display()))?;
    if !status.success() {
        return Err(error!(
            "prove: `python3 -m venv` failed; install Python's venv module (on Debian: \
             apt-get install python3-venv)"
        ));
    }
    // The venv's python3 is a link to the host's: it works from wherever
    // the folder is renamed to, unlike pip's own script.
    let status = Command::new(dir.join("bin/python3"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements)
        .status()
        .map_err(|e| error!("prove: cannot run pip: {e}"))?;
    if !status.success() {
        return Err(error!(
            "prove: pip could not install {} (PyPI must be reachable the first time)",
            requirements.display()
        ));
    }
    std::fs::write(dir.join("requirements.txt"), wanted)?;
    Ok(())
}

/// Debian's `spin`, from the cache (fetched the first time).
pub(crate) fn spin() -> Result<PathBuf> {
    let entry = debian::ensure(&Spin, Resolve::Cached)?;
    Ok(entry.dir.join("spin"))
}

/// Debian 12's packages for the host's architecture.
const HOST_SOURCES: Sources = Sources {
    state: "apt-host",
    architecture: HOST_ARCHITECTURE,
    lines: &[Source {
        uri: "http://deb.debian.org/debian",
        suite: debian::SUITE,
        components: "main",
    }],
};

/// The recipe: `spin` in, its `/usr/bin/spin` out (it needs only the C
/// library, and a C compiler to build the verifiers it writes).
struct Spin;

impl Recipe for Spin {
    fn name(&self) -> &str {
        "spin"
    }

    fn revision(&self) -> String {
        "/usr/bin/spin as is".into()
    }

    fn outputs(&self) -> &[&str] {
        &["spin"]
    }

    fn offline_hint(&self) -> String {
        "spin: the Promela model checker comes from Debian's archive (package `spin`) the \
         first time, then from target/spin/ with no network; or copy target/spin/ from a \
         machine that has it"
            .into()
    }

    fn sources(&self) -> Sources {
        HOST_SOURCES
    }

    fn resolve(&self, archive: &Archive) -> Result<Vec<debian::Package>> {
        Ok(vec![archive.package("spin", HOST_ARCHITECTURE)?])
    }

    fn build(&self, fetched: &[Fetched], work: &Path, out: &Path) -> Result<()> {
        let [package] = fetched else {
            return Err(error!("spin: expected one package, got {}", fetched.len()));
        };
        let member = "./usr/bin/spin";
        debian::extract(&package.deb, work, &[member])?;
        std::fs::rename(work.join(member), out.join("spin"))?;
        Ok(())
    }
}
