// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What a manifest is compiled against: the programs that exist, where
//! platform descriptions are and the default guest's files, read from a
//! workspace or given by a test.

use std::path::{Path, PathBuf};

use crate::diag::{At, Diagnostic, Sink};
use crate::platform::Platform;
use crate::read;

/// What a manifest is compiled against: the programs that exist, where
/// platform descriptions are, and the default guest (the files a virtual
/// machine boots when its manifest says `kernel = "debian"`, the default).
#[derive(Clone, Debug)]
pub struct Environment {
    /// The workspace root; platform folders are relative to it.
    root: PathBuf,
    /// Known program names.
    programs: Vec<String>,
    /// Folders holding `<platform>/platform.toml`, relative to `root`,
    /// searched in order.
    platform_dirs: Vec<PathBuf>,
    /// The default guest's kernel and initramfs, if the caller has them.
    default_guest: Option<DefaultGuest>,
}

/// The files a virtual machine boots by default: Debian's arm64 kernel and
/// the busybox initramfs, which `cargo xtask guests` fetches and builds. The
/// compiler never fetches anything; `cargo xtask` resolves them first.
#[derive(Clone, Debug)]
pub(crate) struct DefaultGuest {
    /// The arm64 `Image`.
    pub(crate) kernel: PathBuf,
    /// The initramfs.
    pub(crate) initrd: PathBuf,
}

impl Environment {
    /// The environment of a workspace: programs are the folders
    /// `services/<x>` that hold a `Cargo.toml` and a `src/main.rs` (so the
    /// runtime library `services/rt` is not one); platforms are under
    /// `platforms/`.
    #[must_use]
    pub fn from_workspace(root: &Path) -> Self {
        let mut programs: Vec<String> = std::fs::read_dir(root.join("services"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                let path = entry.path();
                path.join("Cargo.toml").is_file() && path.join("src/main.rs").is_file()
            })
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .collect();
        programs.sort();
        Self::new(root, programs)
    }

    /// An environment with the given programs, and platforms under
    /// `root/platforms`.
    #[must_use]
    pub fn new(root: &Path, programs: Vec<String>) -> Self {
        Self {
            root: root.to_path_buf(),
            programs,
            platform_dirs: vec![PathBuf::from("platforms")],
            default_guest: None,
        }
    }

    /// Gives virtual machines a default guest: `kernel = "debian"` (the
    /// default) boots `kernel`, `initrd = "debian"` (the default) loads
    /// `initrd`. `cargo xtask` passes the files `cargo xtask guests` made;
    /// without them, a manifest that uses the default is an error that says
    /// so.
    #[must_use]
    pub fn with_default_guest(mut self, kernel: PathBuf, initrd: PathBuf) -> Self {
        self.default_guest = Some(DefaultGuest { kernel, initrd });
        self
    }

    /// The default guest, if one was given.
    pub(crate) fn default_guest(&self) -> Option<&DefaultGuest> {
        self.default_guest.as_ref()
    }

    /// Also looks for platforms in `dir` (relative to the root), before the
    /// others: for test boards.
    #[must_use]
    pub fn with_platform_dir(mut self, dir: &Path) -> Self {
        self.platform_dirs.insert(0, dir.to_path_buf());
        self
    }

    /// The platforms that exist, sorted.
    fn platform_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .platform_dirs
            .iter()
            .flat_map(|dir| {
                std::fs::read_dir(self.root.join(dir))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .filter(|entry| entry.path().join("platform.toml").is_file())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The known program names.
    pub(crate) fn programs(&self) -> &[String] {
        &self.programs
    }

    /// Finds, reads and checks the platform `name`; its errors go to
    /// `platform_errors`, a missing platform is an error at `name`.
    pub(crate) fn load_platform(
        &self,
        name: &At<String>,
        sink: &mut Sink<'_>,
        platform_errors: &mut Vec<Diagnostic>,
    ) -> Option<Platform> {
        let found = hv_image::is_valid_name(&name.value)
            .then(|| {
                self.platform_dirs.iter().find_map(|dir| {
                    let shown = dir.join(&name.value).join("platform.toml");
                    self.root.join(&shown).is_file().then_some(shown)
                })
            })
            .flatten();
        let Some(shown) = found else {
            let names = self.platform_names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let known = format!("the platforms are {}", read::list(&names));
            let help = match read::closest(&name.value, &names) {
                Some(near) => format!("did you mean `{near}`? {known}"),
                None => known,
            };
            sink.error(
                &name.place,
                format!(
                    "no platform `{}`: there is no platforms/{}/platform.toml",
                    name.value, name.value
                ),
                help,
            );
            return None;
        };
        let shown_text = shown.display().to_string();
        let text = match std::fs::read_to_string(self.root.join(&shown)) {
            Ok(text) => text,
            Err(error) => {
                let mut platform_sink = Sink::new(&shown_text, "");
                platform_sink
                    .file_error(format!("cannot read the platform description: {error}"), "");
                platform_errors.extend(platform_sink.into_diagnostics());
                return None;
            }
        };
        let mut platform_sink = Sink::new(&shown_text, &text);
        let platform = Platform::parse(&shown_text, &text, &name.value, &mut platform_sink);
        platform_errors.extend(platform_sink.into_diagnostics());
        platform
    }
}
