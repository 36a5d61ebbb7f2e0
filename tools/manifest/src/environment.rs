// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What a manifest is compiled against: the programs that exist, where
//! platform descriptions are, the default guest's files and the guest
//! programs' images, read from a workspace or given by a test.

use std::path::{Path, PathBuf};

use crate::diag::{At, Diagnostic, Sink};
use crate::platform::Platform;
use crate::read;

/// What a manifest is compiled against: the programs that exist, where
/// platform descriptions are, the default guest (the files a virtual
/// machine boots when its manifest says `kernel = "debian"`, the default)
/// and the guest programs (`kernel = "guest:<name>"`).
#[derive(Clone, Debug)]
pub struct Environment {
    /// The workspace root; platform folders are relative to it.
    root: PathBuf,
    /// Known programs: each name with its crate's folder, relative to
    /// `root`, sorted by name. A name may appear twice (a folder of that
    /// name in both of [`PROGRAM_FOLDERS`]), which a manifest that names it
    /// is told.
    programs: Vec<(String, PathBuf)>,
    /// Folders holding `<platform>/platform.toml`, relative to `root`,
    /// searched in order.
    platform_dirs: Vec<PathBuf>,
    /// The default guest's kernel and initramfs, if the caller has them.
    default_guest: Option<DefaultGuest>,
    /// The guest programs (`kernel = "guest:<name>"`), sorted by name, each
    /// with its built `Image` if the caller gave one.
    guest_programs: Vec<(String, Option<PathBuf>)>,
    /// The board to build for, whatever the manifest's `platform` says
    /// (`cargo xtask run --board rpi4`).
    board: Option<String>,
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

/// Where a workspace's programs are, relative to its root: the services a
/// shipped system may run, and the partitions only the tests run (attackers,
/// crashers, spinners). Program `x` is the crate in `<folder>/x/` (package
/// `svc-x`, binary `x`) in either; a name may be in only one of them.
pub const PROGRAM_FOLDERS: [&str; 2] = ["services", "tests/partitions"];

/// How the places programs come from are named in messages.
pub(crate) const PROGRAM_PLACES: &str = "services/ and tests/partitions/";

impl Environment {
    /// The environment of a workspace: programs are the folders `<x>` of
    /// [`PROGRAM_FOLDERS`] (`services/` and `tests/partitions/`) that hold a
    /// `Cargo.toml` and a `src/main.rs` (so the runtime library
    /// `services/rt` is not one); guest programs are the folders
    /// `guests/<x>` that hold both, not yet built (see
    /// [`Self::with_guest_program`]); platforms are under `platforms/`.
    #[must_use]
    pub fn from_workspace(root: &Path) -> Self {
        let mut environment = Self::new(root, Vec::new());
        for folder in PROGRAM_FOLDERS {
            for name in crates_in(&root.join(folder)) {
                environment = environment.with_program(&name, &Path::new(folder).join(&name));
            }
        }
        environment.guest_programs = crates_in(&root.join("guests"))
            .into_iter()
            .map(|name| (name, None))
            .collect();
        environment
    }

    /// An environment with the given programs (each as if in
    /// `services/<name>`), and platforms under `root/platforms`.
    #[must_use]
    pub fn new(root: &Path, programs: Vec<String>) -> Self {
        let mut programs: Vec<(String, PathBuf)> = programs
            .into_iter()
            .map(|name| {
                let folder = Path::new(PROGRAM_FOLDERS[0]).join(&name);
                (name, folder)
            })
            .collect();
        programs.sort();
        Self {
            root: root.to_path_buf(),
            programs,
            platform_dirs: vec![PathBuf::from("platforms")],
            default_guest: None,
            guest_programs: Vec::new(),
            board: None,
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

    /// Adds the program `name`, whose crate is in `folder` (relative to the
    /// root, as messages and the report show it).
    #[must_use]
    pub fn with_program(mut self, name: &str, folder: &Path) -> Self {
        self.programs.push((name.to_owned(), folder.to_path_buf()));
        self.programs.sort();
        self
    }

    /// Gives the guest program `name` (the project's own bare-metal guest
    /// `guests/<name>`, which a virtual machine boots with `kernel =
    /// "guest:<name>"`) its built arm64 `Image`, `image`. `cargo xtask`
    /// builds the guest programs a manifest names and passes them; a name
    /// the workspace does not have becomes known. A guest program that is
    /// known but has no image is an error that says it was not built.
    #[must_use]
    pub fn with_guest_program(mut self, name: &str, image: PathBuf) -> Self {
        match self.guest_programs.iter_mut().find(|(n, _)| n == name) {
            Some((_, slot)) => *slot = Some(image),
            None => {
                self.guest_programs.push((name.to_owned(), Some(image)));
                self.guest_programs.sort();
            }
        }
        self
    }

    /// The guest program `name`: `None` if there is none, `Some(None)` if
    /// it exists but was not built, else its image.
    pub(crate) fn guest_program(&self, name: &str) -> Option<Option<&Path>> {
        self.guest_programs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, image)| image.as_deref())
    }

    /// The guest programs' names, sorted.
    pub(crate) fn guest_program_names(&self) -> Vec<&str> {
        self.guest_programs
            .iter()
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Builds the system for `board`'s platform instead of the one its
    /// `[system] platform` names: the same manifest on another board, whose
    /// `platform.toml` must name the devices it uses.
    #[must_use]
    pub fn with_board(mut self, board: &str) -> Self {
        self.board = Some(board.to_owned());
        self
    }

    /// The board [`Self::with_board`] chose, if any.
    pub(crate) fn board(&self) -> Option<&str> {
        self.board.as_deref()
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

    /// The known program names, sorted, once each.
    pub(crate) fn programs(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.programs.iter().map(|(n, _)| n.as_str()).collect();
        names.dedup();
        names
    }

    /// The folders (relative to the root) that hold a program `name`: one
    /// for a program that exists, none for one that does not, two for a
    /// name in both of [`PROGRAM_FOLDERS`].
    pub(crate) fn program_folders(&self, name: &str) -> Vec<&Path> {
        self.programs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, folder)| folder.as_path())
            .collect()
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

/// The folders of `dir` that hold a crate with a binary: a `Cargo.toml`
/// and a `src/main.rs`. Sorted by name; none if `dir` cannot be read.
fn crates_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let path = entry.path();
            path.join("Cargo.toml").is_file() && path.join("src/main.rs").is_file()
        })
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}
