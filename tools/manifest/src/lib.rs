// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-manifest: the manifest compiler. A system's TOML in; a checked
//! [`BootManifest`], the capability slots of every partition and a report
//! out, or every error found, each with file, line, column, key and a hint.
//!
//! The format is documented in `docs/manifest.md`. The stages, one module
//! each:
//! 1. `read`/`system`: the TOML, parsed with spans, read into declarations
//!    (`diag` collects the errors, `size` reads sizes);
//!    unknown keys, missing keys and wrong types are errors.
//! 2. `environment`/`platform`: the programs that exist, and
//!    `platforms/<name>/platform.toml`, read and checked the same way.
//! 3. `check`/`channels`: names resolve, memory and devices fit the platform
//!    and are owned once, badges and bits are chosen, limits hold.
//! 4. `lower`: the checked system becomes a [`BootManifest`], which is then
//!    validated as the kernel will validate it; a failure there is a bug here.
//! 5. `report`: the memory map, capabilities and channel graph, as text.
//!
//! Design principles: report everything (never stop at the first error);
//! never panic, whatever the input; no output from a manifest with errors.

#![forbid(unsafe_code)]

mod channels;
mod check;
mod diag;
mod environment;
mod lower;
mod model;
mod platform;
mod read;
mod report;
mod size;
mod system;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics};
pub use environment::Environment;
pub use hv_image::BootManifest;
use hv_image::package::{self, BuildError};

use crate::diag::Sink;

/// A compiled system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// The manifest the kernel will read, already validated.
    pub manifest: BootManifest,
    /// Program names by index: program `x` is the crate `services/x`
    /// (package `svc-x`); a partition's `program` indexes this list.
    pub programs: Vec<String>,
    /// For each partition, in order: its name and each capability's name
    /// (the channel's or the device's) with its slot.
    pub slots: Vec<(String, Vec<(String, u32)>)>,
    /// The report: memory map, address spaces, capabilities, channels.
    pub report: String,
}

impl Compiled {
    /// Packs the manifest with the programs' bytes, in [`Self::programs`]
    /// order, into a boot package.
    ///
    /// # Errors
    ///
    /// If the programs do not match the manifest or do not fit the format.
    pub fn package(&self, programs: &[&[u8]]) -> Result<Vec<u8>, BuildError> {
        package::build(&self.manifest, programs)
    }
}

/// Compiles the system manifest at `system_toml` against the workspace at
/// `workspace_root`. Paths in errors are shown as `system_toml` was given.
///
/// # Errors
///
/// Every error found, if there is any.
pub fn compile(system_toml: &Path, workspace_root: &Path) -> Result<Compiled, Diagnostics> {
    let file = system_toml.display().to_string();
    let source = std::fs::read_to_string(system_toml).map_err(|error| Diagnostics {
        errors: vec![Diagnostic {
            file: file.clone(),
            position: None,
            key: String::new(),
            message: format!("cannot read the manifest: {error}"),
            help: "check the path".to_owned(),
        }],
    })?;
    compile_source(&file, &source, &Environment::from_workspace(workspace_root))
}

/// Compiles manifest text; `file` is how to name it in errors.
///
/// # Errors
///
/// Every error found, if there is any.
pub fn compile_source(
    file: &str,
    source: &str,
    environment: &Environment,
) -> Result<Compiled, Diagnostics> {
    let mut sink = Sink::new(file, source);
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(source);
    for error in read::cascade_free(source, &syntax_errors) {
        read::syntax_error(&mut sink, error);
    }
    if sink.has_errors() {
        return Err(Diagnostics {
            errors: sink.into_diagnostics(),
        });
    }
    let declared = system::read(document.get_ref(), &mut sink);
    let mut platform_errors = Vec::new();
    let platform = declared
        .platform
        .as_ref()
        .and_then(|name| environment.load_platform(name, &mut sink, &mut platform_errors));
    let checked = check::check(
        &declared,
        platform.as_ref(),
        environment.programs(),
        &mut sink,
    );
    let mut errors = platform_errors;
    errors.extend(sink.into_diagnostics());
    if !errors.is_empty() {
        return Err(Diagnostics { errors });
    }
    let internal = |message: String| Diagnostics {
        errors: vec![Diagnostic {
            file: file.to_owned(),
            position: None,
            key: String::new(),
            message: format!("internal error: {message}"),
            help:
                "this is a bug in hv-manifest (tools/manifest): please report it with this manifest"
                    .to_owned(),
        }],
    };
    let system =
        checked.ok_or_else(|| internal("the checks failed without an error".to_owned()))?;
    let (manifest, slots) = lower::lower(&system).map_err(internal)?;
    manifest.validate().map_err(|error| {
        internal(format!(
            "the compiled manifest fails the kernel's own check: {error}"
        ))
    })?;
    let report = report::report(&system, &manifest, &slots);
    Ok(Compiled {
        manifest,
        programs: system.programs,
        slots,
        report,
    })
}

#[cfg(test)]
mod tests;
