// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Files made from Debian packages, fetched from Debian's archive and cached
//! under the target directory.
//!
//! The guest kernel and busybox ([`crate::guests`]) and U-Boot
//! ([`crate::setup`]) come from Debian 12 ("bookworm") packages for arm64
//! (or `all`); QEMU ([`crate::setup`]) from bookworm-backports, for the host's
//! architecture. They are fetched with the host's apt-get, but through a
//! private apt state per set of [`Sources`] in `target/debian/<state>/`
//! (`target/debian/apt/` for bookworm's arm64 index: its own sources list,
//! index lists, package cache, an empty dpkg status and
//! `APT::Architecture=arm64`), so the host's dpkg and apt configuration is
//! never changed and root is not needed.
//! apt checks the index's signature and every package against the index's
//! hashes; the SHA-256 of each package and of each file made from it is also
//! recorded in the cache entry's `manifest.toml` and checked again.
//!
//! A [`Recipe`] says which packages to resolve and how to make files from them.
//! [`ensure`] keeps, per recipe, `target/<recipe>/index.toml` (the last
//! resolution: which entry, which packages, when) and one folder per resolved
//! set, `target/<recipe>/<key>/`, whose key is made of the package names and
//! versions and the recipe's revision, so a Debian update or a change to the
//! recipe makes a new entry. With a valid entry, [`ensure`] needs no network
//! and takes a fraction of a second: it reads the index and checks the
//! files' hashes. It resolves again only when asked to ([`Resolve::Refresh`])
//! or when there is no valid entry.
//!
//! Entries are built in a temporary folder `target/<recipe>/.tmp-<pid>/` and
//! renamed into place when complete, so an interrupted or failed build never
//! leaves a half-written entry; a temporary folder whose process is gone is
//! removed the next time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{Result, error};

/// The Debian release the packages come from.
pub(crate) const SUITE: &str = "bookworm";

/// The architecture of the package index.
pub(crate) const ARCHITECTURE: &str = "arm64";

/// Debian's name for the architecture this xtask runs on (for host tools
/// such as QEMU).
pub(crate) const HOST_ARCHITECTURE: &str = if cfg!(target_arch = "x86_64") {
    "amd64"
} else if cfg!(target_arch = "aarch64") {
    "arm64"
} else {
    "unsupported-host"
};

/// Debian's archive signing keys (package `debian-archive-keyring`).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One line of a sources list: an archive, a suite and its components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    /// The archive, e.g. `http://deb.debian.org/debian`.
    pub(crate) uri: &'static str,
    /// The suite, e.g. `bookworm-updates`.
    pub(crate) suite: &'static str,
    /// Its components, separated by spaces, e.g. `main non-free-firmware`.
    pub(crate) components: &'static str,
}

/// Where a recipe's packages come from: the architecture of the index and
/// the lines of its sources list. Each set has an apt state of its own,
/// `target/debian/<state>/`, so recipes that want different indexes never
/// share (or race on) one sources list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sources {
    /// The folder of the apt state under `target/debian/`.
    pub(crate) state: &'static str,
    /// `APT::Architecture` of the index, e.g. `arm64`.
    pub(crate) architecture: &'static str,
    /// The sources list.
    pub(crate) lines: &'static [Source],
}

/// Debian 12's arm64 index with `non-free-firmware` beside `main` (the
/// Raspberry Pi's firmware), in an apt state of its own so that the other
/// recipes' index stays as it was.
pub(crate) const BOOKWORM_ARM64_FIRMWARE: Sources = Sources {
    state: "apt+non-free-firmware",
    architecture: ARCHITECTURE,
    lines: &[
        Source {
            uri: "http://deb.debian.org/debian",
            suite: SUITE,
            components: "main non-free-firmware",
        },
        Source {
            uri: "http://deb.debian.org/debian",
            suite: "bookworm-updates",
            components: "main non-free-firmware",
        },
        Source {
            uri: "http://deb.debian.org/debian-security",
            suite: "bookworm-security",
            components: "main non-free-firmware",
        },
    ],
};

/// Debian 12's arm64 index with its updates and security fixes: what a
/// [`Recipe`] uses unless it says otherwise.
pub(crate) const BOOKWORM_ARM64: Sources = Sources {
    state: "apt",
    architecture: ARCHITECTURE,
    lines: &[
        Source {
            uri: "http://deb.debian.org/debian",
            suite: SUITE,
            components: "main",
        },
        Source {
            uri: "http://deb.debian.org/debian",
            suite: "bookworm-updates",
            components: "main",
        },
        Source {
            uri: "http://deb.debian.org/debian-security",
            suite: "bookworm-security",
            components: "main",
        },
    ],
};

impl Sources {
    /// The `sources.list` of the apt state (one-line format, signed by
    /// Debian's keyring).
    pub(crate) fn list(&self) -> String {
        let mut text = String::new();
        for line in self.lines {
            let _ = writeln!(
                text,
                "deb [arch={} signed-by={KEYRING}] {} {} {}",
                self.architecture, line.uri, line.suite, line.components
            );
        }
        text
    }

    /// `arm64 index (bookworm, bookworm-updates)`, for messages.
    fn describe(&self) -> String {
        let mut suites: Vec<&str> = Vec::new();
        for line in self.lines {
            if !suites.contains(&line.suite) {
                suites.push(line.suite);
            }
        }
        format!(
            "{} package index ({})",
            self.architecture,
            suites.join(", ")
        )
    }
}

/// The target directory: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()
                    .map(|cwd| cwd.join(&dir))
                    .unwrap_or(dir)
            }
        }
        _ => crate::root().join("target"),
    }
}

/// Whether [`ensure`] may use the last resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Use the entry the index names if it is intact; resolve only if there is
    /// none (no network when there is one).
    Cached,
    /// Update the package index and resolve the packages again.
    Refresh,
}

/// A binary package, as the archive's signed index describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Package {
    /// The package name, e.g. `linux-image-6.1.0-56-arm64`.
    pub(crate) name: String,
    /// Its Debian version, e.g. `6.1.192-2`.
    pub(crate) version: String,
    /// `arm64` or `all`.
    pub(crate) architecture: String,
    /// Size of the .deb in bytes.
    pub(crate) size: u64,
    /// SHA-256 of the .deb, lower-case hex.
    pub(crate) sha256: String,
}

/// A file of a cache entry with its size and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileSum {
    /// The file's name inside the entry.
    pub(crate) name: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// SHA-256, lower-case hex.
    pub(crate) sha256: String,
}

/// `manifest.toml` of a cache entry: what it was made from and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The recipe's revision the entry was built with.
    pub(crate) revision: String,
    /// When it was built, in seconds since the Unix epoch.
    pub(crate) built: u64,
    /// The packages, in the recipe's order.
    pub(crate) packages: Vec<Package>,
    /// The files.
    pub(crate) files: Vec<FileSum>,
}

/// `index.toml` of a recipe: the last resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    /// When the packages were resolved, in seconds since the Unix epoch.
    pub(crate) resolved: u64,
    /// The entry's folder name (its key).
    pub(crate) entry: String,
    /// The resolved packages.
    pub(crate) packages: Vec<Package>,
}

/// A valid cache entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Its folder.
    pub(crate) dir: PathBuf,
    /// What it was made from and holds.
    pub(crate) manifest: Manifest,
}

impl Entry {
    /// The package called `name`, if the entry was made from it.
    pub(crate) fn package(&self, name: &str) -> Option<&Package> {
        self.manifest.packages.iter().find(|p| p.name == name)
    }
}

/// A package that has been downloaded and checked.
#[derive(Clone, Debug)]
pub(crate) struct Fetched {
    /// What it is.
    pub(crate) package: Package,
    /// The .deb.
    pub(crate) deb: PathBuf,
}

/// Files made from Debian packages.
pub(crate) trait Recipe {
    /// The cache folder under the target directory, and the prefix of its
    /// messages, e.g. `guests`.
    fn name(&self) -> &str;
    /// Changes whenever [`Recipe::build`] would make different files from the
    /// same packages; part of the cache key.
    fn revision(&self) -> String;
    /// The files [`Recipe::build`] writes into its output folder.
    fn outputs(&self) -> &[&str];
    /// What the user can do without the network, for the error message.
    fn offline_hint(&self) -> String;
    /// The index the packages come from: Debian 12's arm64 packages unless
    /// the recipe says otherwise.
    fn sources(&self) -> Sources {
        BOOKWORM_ARM64
    }
    /// Picks the packages from the archive's current index.
    fn resolve(&self, archive: &Archive) -> Result<Vec<Package>>;
    /// Writes [`Recipe::outputs`] into `out` from the packages (in the order
    /// [`Recipe::resolve`] gave), using `work` as scratch space.
    fn build(&self, fetched: &[Fetched], work: &Path, out: &Path) -> Result<()>;
}

/// Makes sure the recipe's files are in the cache and returns the entry.
pub(crate) fn ensure(recipe: &dyn Recipe, resolve: Resolve) -> Result<Entry> {
    let name = recipe.name();
    let base = target_dir().join(name);
    std::fs::create_dir_all(&base)
        .map_err(|e| error!("{name}: cannot create {}: {e}", base.display()))?;
    remove_stale_temporaries(&base);
    let index_path = base.join("index.toml");
    let revision = recipe.revision();
    if resolve == Resolve::Cached
        && let Some(index) = read_index(&index_path)
        && index.entry == key(&index.packages, &revision)
    {
        let dir = base.join(&index.entry);
        if let Some(manifest) = intact(recipe, &dir)? {
            return Ok(Entry { dir, manifest });
        }
    }
    let archive = Archive::open(name, recipe.sources())?;
    archive.update().map_err(|e| {
        let kept = if resolve == Resolve::Refresh && index_path.is_file() {
            format!(
                "\n{name}: the files fetched before are still in the cache, and are used when not refreshing"
            )
        } else {
            String::new()
        };
        error!("{e}\n{}{kept}", recipe.offline_hint())
    })?;
    let packages = recipe.resolve(&archive)?;
    let resolved = now();
    let entry = key(&packages, &revision);
    let dir = base.join(&entry);
    let manifest = if let Some(manifest) = intact(recipe, &dir)? {
        eprintln!("{name}: up to date");
        manifest
    } else {
        install(&base, &entry, |work, out| {
            let fetched = packages
                .iter()
                .map(|p| archive.download(p, &work.join("debs")))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| error!("{e}\n{}", recipe.offline_hint()))?;
            let scratch = work.join("work");
            std::fs::create_dir_all(&scratch)?;
            let started = Instant::now();
            recipe.build(&fetched, &scratch, out)?;
            eprintln!(
                "{name}: built {} in {}",
                recipe.outputs().join(", "),
                seconds(started.elapsed())
            );
            seal(out, &revision, &packages, recipe.outputs())
        })?;
        verify(&dir, recipe.outputs())?
    };
    let index = Index {
        resolved,
        entry,
        packages,
    };
    let text =
        toml::to_string(&index).map_err(|e| error!("{name}: cannot write its index: {e}"))?;
    write_atomically(&index_path, &text)?;
    Ok(Entry { dir, manifest })
}

/// The manifest of the entry in `dir` if it is there and intact. A damaged
/// entry is removed, so that it is made again.
fn intact(recipe: &dyn Recipe, dir: &Path) -> Result<Option<Manifest>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    match verify(dir, recipe.outputs()) {
        Ok(manifest) => Ok(Some(manifest)),
        Err(why) => {
            eprintln!(
                "{}: the cache entry {} is damaged ({why}); making it again",
                recipe.name(),
                dir.display()
            );
            std::fs::remove_dir_all(dir)
                .map_err(|e| error!("cannot remove {}: {e}", dir.display()))?;
            Ok(None)
        }
    }
}

/// When the recipe's packages were last resolved, in seconds since the Unix
/// epoch, if ever.
pub(crate) fn resolved(recipe: &dyn Recipe) -> Option<u64> {
    read_index(&target_dir().join(recipe.name()).join("index.toml")).map(|i| i.resolved)
}

/// The cache key of a set of packages built by a recipe of `revision`: the
/// first package's name and version (to be readable) and a hash of all of them
/// and the revision. The hash (64-bit FNV-1a) only tells entries apart; the
/// files' integrity is the manifest's SHA-256 sums.
pub(crate) fn key(packages: &[Package], revision: &str) -> String {
    let mut text = String::new();
    for p in packages {
        let _ = writeln!(
            text,
            "{} {} {} {}",
            p.name, p.version, p.architecture, p.sha256
        );
    }
    let _ = write!(text, "revision {revision}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let readable = packages
        .first()
        .map(|p| format!("{}_{}-", p.name, p.version))
        .unwrap_or_default();
    let readable: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{readable}{hash:016x}")
}

/// Reads an index, or `None` if there is none or it cannot be parsed.
fn read_index(path: &Path) -> Option<Index> {
    toml::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Checks an entry against its manifest: every output is listed, and every
/// listed file has its size and SHA-256.
fn verify(dir: &Path, outputs: &[&str]) -> Result<Manifest> {
    let text = std::fs::read_to_string(dir.join("manifest.toml"))
        .map_err(|e| error!("no manifest.toml: {e}"))?;
    let manifest: Manifest =
        toml::from_str(&text).map_err(|e| error!("manifest.toml cannot be read: {e}"))?;
    for output in outputs {
        if !manifest.files.iter().any(|f| f.name == *output) {
            return Err(error!("manifest.toml does not list {output}"));
        }
    }
    let paths: Vec<PathBuf> = manifest.files.iter().map(|f| dir.join(&f.name)).collect();
    for (file, path) in manifest.files.iter().zip(&paths) {
        let size = std::fs::metadata(path)
            .map_err(|e| error!("{}: {e}", file.name))?
            .len();
        if size != file.size {
            return Err(error!(
                "{} has {size} bytes, the manifest says {}",
                file.name, file.size
            ));
        }
    }
    let sums = sha256(&paths)?;
    for (file, sum) in manifest.files.iter().zip(sums) {
        if sum != file.sha256 {
            return Err(error!(
                "{} has SHA-256 {sum}, the manifest says {}",
                file.name, file.sha256
            ));
        }
    }
    Ok(manifest)
}

/// Writes `manifest.toml` into a finished output folder.
fn seal(out: &Path, revision: &str, packages: &[Package], outputs: &[&str]) -> Result<()> {
    let paths: Vec<PathBuf> = outputs.iter().map(|o| out.join(o)).collect();
    let sums = sha256(&paths)?;
    let mut files = Vec::new();
    for ((name, path), sha256) in outputs.iter().zip(&paths).zip(sums) {
        files.push(FileSum {
            name: (*name).to_string(),
            size: std::fs::metadata(path)?.len(),
            sha256,
        });
    }
    let manifest = Manifest {
        revision: revision.to_string(),
        built: now(),
        packages: packages.to_vec(),
        files,
    };
    let text = toml::to_string(&manifest).map_err(|e| error!("cannot write manifest.toml: {e}"))?;
    std::fs::write(out.join("manifest.toml"), text)?;
    Ok(())
}

/// Builds `base/<key>` atomically: `build(work, out)` runs with two folders
/// inside a temporary `base/.tmp-<pid>/`, and `out` is renamed to `base/<key>`
/// only if it succeeds. The temporary folder is removed either way.
pub(crate) fn install(
    base: &Path,
    key: &str,
    build: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<PathBuf> {
    let temporary = base.join(format!(".tmp-{}", std::process::id()));
    if temporary.exists() {
        std::fs::remove_dir_all(&temporary)?;
    }
    let out = temporary.join("out");
    std::fs::create_dir_all(&out).map_err(|e| error!("cannot create {}: {e}", out.display()))?;
    let finished = build(&temporary, &out).and_then(|()| {
        let dir = base.join(key);
        match std::fs::rename(&out, &dir) {
            Ok(()) => Ok(dir),
            // Another run put the same entry in place first.
            Err(_) if dir.join("manifest.toml").is_file() => Ok(dir),
            Err(e) => Err(error!(
                "cannot move the new entry to {}: {e}",
                dir.display()
            )),
        }
    });
    let _ = std::fs::remove_dir_all(&temporary);
    finished
}

/// Removes `.tmp-<pid>` folders and files in `base` whose process is gone.
pub(crate) fn remove_stale_temporaries(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".tmp-"))
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or("")
            })
            .and_then(|digits| digits.parse::<u32>().ok())
        else {
            continue;
        };
        if !xtask_running(pid) {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Whether process `pid` is a running xtask (not gone, not a zombie, not
/// another program that got the number since).
fn xtask_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`; comm may hold spaces and parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let state = stat[close + 1..].trim_start().chars().next();
    stat[open + 1..close].starts_with("xtask") && !matches!(state, Some('Z' | 'X') | None)
}

/// Writes a file through a temporary sibling and a rename.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".tmp-{}-{name}", std::process::id()));
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| error!("cannot write {}: {e}", path.display()))
}

/// The SHA-256 of each file, in order, with coreutils' `sha256sum` (the xtask
/// is built without optimisation, and sha256sum hashes a 33 MB kernel in a
/// tenth of a second).
pub(crate) fn sha256(paths: &[PathBuf]) -> Result<Vec<String>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let out = Command::new("sha256sum")
        .arg("--")
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| error!("cannot run sha256sum: {e}"))?;
    if !out.status.success() {
        return Err(error!(
            "sha256sum failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let sums = parse_sha256sum(&String::from_utf8_lossy(&out.stdout));
    if sums.len() != paths.len() {
        return Err(error!(
            "sha256sum printed {} sums for {} files",
            sums.len(),
            paths.len()
        ));
    }
    Ok(sums)
}

/// The hashes of `sha256sum`'s output, in order.
fn parse_sha256sum(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            // A name with a backslash or newline makes sha256sum start the line with `\`.
            let hex = line.trim_start_matches('\\').get(..64)?;
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| hex.to_ascii_lowercase())
        })
        .collect()
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2026-11-21 09:30 UTC` for a Unix time.
pub(crate) fn utc(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let minutes = unix % 86_400 / 60;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar),
    // counting in 400-year eras that start on 1 March.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// `59.8 MB` or `822 kB`, as apt counts.
pub(crate) fn human_size(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a size to show, rounded anyway")]
    let bytes = bytes as f64;
    if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else {
        format!("{:.0} kB", bytes / 1e3)
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A private apt state for one set of [`Sources`], in
/// `target/debian/<state>/` (`target/debian/apt/` for Debian's arm64 index).
pub(crate) struct Archive {
    /// The message prefix (the recipe's name).
    who: String,
    /// The state folder.
    dir: PathBuf,
    /// The index it holds.
    sources: Sources,
}

impl Archive {
    /// Prepares the private apt state for `sources` (no network).
    pub(crate) fn open(who: &str, sources: Sources) -> Result<Self> {
        let dir = target_dir().join("debian").join(sources.state);
        let archive = Self {
            who: who.to_string(),
            dir,
            sources,
        };
        archive.prepare().map_err(|e| {
            error!(
                "{who}: cannot prepare the apt state in {}: {e}",
                archive.dir.display()
            )
        })?;
        Ok(archive)
    }

    fn prepare(&self) -> std::io::Result<()> {
        let d = &self.dir;
        for sub in [
            "lists/partial",
            "cache/archives/partial",
            "sources.list.d",
            "preferences.d",
        ] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        std::fs::write(d.join("status"), "")?;
        std::fs::write(d.join("sources.list"), self.sources.list())?;
        std::fs::write(d.join("apt.conf"), apt_config(d, self.sources.architecture))
    }

    /// An `apt-get` or `apt-cache` command on the private state.
    fn apt(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .arg("-c")
            .arg(self.dir.join("apt.conf"))
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        command
    }

    /// Runs `command`, returning its standard output, or an error that says
    /// what `what` was and quotes apt's complaints.
    fn output(&self, mut command: Command, what: &str) -> Result<String> {
        let out = command.output().map_err(|e| {
            error!(
                "{}: cannot run {what}: {e}. Fetching Debian packages needs apt-get, apt-cache and dpkg-deb (a Debian or Ubuntu host)",
                self.who
            )
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(error!(
                "{}: {what} failed: {}",
                self.who,
                complaints(&stdout, &String::from_utf8_lossy(&out.stderr))
            ))
        }
    }

    /// Fetches the current package index (`apt-get update`).
    pub(crate) fn update(&self) -> Result<()> {
        if !Path::new(KEYRING).is_file() {
            return Err(error!(
                "{}: {KEYRING} is missing; install Debian's archive keys: apt-get install debian-archive-keyring",
                self.who
            ));
        }
        eprintln!(
            "{}: updating Debian's {} in {}...",
            self.who,
            self.sources.describe(),
            self.dir.display()
        );
        let started = Instant::now();
        // Without --error-on=any, apt-get update exits 0 when an index could
        // not be fetched (and an old copy, or none, is used).
        let out = self
            .apt("apt-get")
            .args(["-q", "update", "--error-on=any"])
            .output()
            .map_err(|e| error!("{}: cannot run apt-get: {e}. Fetching Debian packages needs apt-get, apt-cache and dpkg-deb (a Debian or Ubuntu host)", self.who))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let failed = stderr
            .lines()
            .chain(stdout.lines())
            .any(|l| l.starts_with("W: Failed to fetch") || l.starts_with("E:"));
        if !out.status.success() || failed {
            return Err(error!(
                "{}: could not fetch Debian's package index (is this machine offline?): {}",
                self.who,
                complaints(&stdout, &stderr)
            ));
        }
        eprintln!(
            "{}: package index updated in {}",
            self.who,
            seconds(started.elapsed())
        );
        Ok(())
    }

    /// The index's record of the candidate version of `name` for
    /// `architecture` (the index's, or `all`).
    pub(crate) fn record(
        &self,
        name: &str,
        architecture: &str,
    ) -> Result<BTreeMap<String, String>> {
        let mut policy = self.apt("apt-cache");
        policy.args(["policy", name]);
        let policy = self.output(policy, &format!("apt-cache policy {name}"))?;
        let version = parse_policy(&policy)
            .into_iter()
            .find(|(package, _)| package == name)
            .and_then(|(_, candidate)| candidate)
            .ok_or_else(|| {
                error!(
                    "{}: Debian's {} has no package {name}",
                    self.who,
                    self.sources.describe()
                )
            })?;
        let mut show = self.apt("apt-cache");
        show.args(["show", &format!("{name}={version}")]);
        let show = self.output(show, &format!("apt-cache show {name}={version}"))?;
        parse_stanzas(&show)
            .into_iter()
            .find(|s| {
                s.get("Package").map(String::as_str) == Some(name)
                    && s.get("Version") == Some(&version)
                    && s.get("Architecture").map(String::as_str) == Some(architecture)
            })
            .ok_or_else(|| {
                error!(
                    "{}: Debian's index has no {architecture} record of {name} {version}",
                    self.who
                )
            })
    }

    /// The candidate version of `name` for `architecture` (the index's, or
    /// `all`).
    pub(crate) fn package(&self, name: &str, architecture: &str) -> Result<Package> {
        let record = self.record(name, architecture)?;
        package_from_record(&record)
            .ok_or_else(|| error!("{}: Debian's record of {name} lacks a field", self.who))
    }

    /// The package that `metapackage`'s candidate depends on whose name starts
    /// with `prefix`: `linux-image-arm64` gives `linux-image-6.1.0-56-arm64`.
    pub(crate) fn dependency(&self, metapackage: &str, prefix: &str) -> Result<String> {
        let record = self.record(metapackage, self.sources.architecture)?;
        dependencies(record.get("Depends").map_or("", String::as_str))
            .into_iter()
            .find(|d| d.starts_with(prefix))
            .ok_or_else(|| {
                error!(
                    "{}: {metapackage} depends on no package named {prefix}*",
                    self.who
                )
            })
    }

    /// Downloads `package` into a folder of its own under `dir` and checks
    /// its size and SHA-256 against the index. Shows progress on stderr.
    pub(crate) fn download(&self, package: &Package, dir: &Path) -> Result<Fetched> {
        let folder = dir.join(&package.name);
        std::fs::create_dir_all(&folder)?;
        let log = folder.join("apt-get.log");
        let log_file = std::fs::File::create(&log)?;
        let mut command = self.apt("apt-get");
        command
            .args(["-q", "download"])
            .arg(format!("{}={}", package.name, package.version))
            .current_dir(&folder)
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let what = format!(
            "{}: fetching {} ({})...",
            self.who,
            package.name,
            human_size(package.size)
        );
        let terminal = std::io::stderr().is_terminal();
        if terminal {
            eprint!("{what}");
        } else {
            eprintln!("{what}");
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| {
            error!(
                "{}: cannot run apt-get: {e}. Fetching Debian packages needs apt-get (a Debian or Ubuntu host)",
                self.who
            )
        })?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if terminal {
                let have = deb_in(&folder)
                    .and_then(|deb| std::fs::metadata(deb).ok())
                    .map_or(0, |m| m.len());
                let percent = have.saturating_mul(100) / package.size.max(1);
                eprint!("\r\x1b[K{what} {}%", percent.min(100));
                let _ = std::io::stderr().flush();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let took = seconds(started.elapsed());
        if terminal {
            eprint!("\r\x1b[K");
        }
        if !status.success() {
            if terminal {
                eprintln!("{what} failed");
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(error!(
                "{}: could not fetch {} {}: {}",
                self.who,
                package.name,
                package.version,
                complaints(&text, "")
            ));
        }
        eprintln!(
            "{}: fetched {} {} ({}) in {took}",
            self.who,
            package.name,
            package.version,
            human_size(package.size)
        );
        let deb = deb_in(&folder).ok_or_else(|| {
            error!(
                "{}: apt-get download left no .deb for {} in {}",
                self.who,
                package.name,
                folder.display()
            )
        })?;
        let size = std::fs::metadata(&deb)?.len();
        let [sum] = <[String; 1]>::try_from(sha256(std::slice::from_ref(&deb))?)
            .map_err(|_| error!("sha256sum printed no sum"))?;
        if size != package.size || sum != package.sha256 {
            return Err(error!(
                "{}: {} has {size} bytes and SHA-256 {sum}, but Debian's index says {} bytes and {}",
                self.who,
                deb.display(),
                package.size,
                package.sha256
            ));
        }
        Ok(Fetched {
            package: package.clone(),
            deb,
        })
    }
}

/// The private apt configuration for an index of `architecture`, read after
/// the host's (`apt-get -c`).
fn apt_config(dir: &Path, architecture: &str) -> String {
    let d = dir.display();
    let mut config = format!(
        r#"// Written by cargo xtask (tools/xtask/src/debian.rs): apt state of its own,
// so that fetching {architecture} packages never touches the host's.
Dir::State "{d}";
Dir::State::Lists "{d}/lists";
Dir::State::status "{d}/status";
Dir::Cache "{d}/cache";
Dir::Cache::archives "{d}/cache/archives";
Dir::Cache::pkgcache "{d}/cache/pkgcache.bin";
Dir::Cache::srcpkgcache "{d}/cache/srcpkgcache.bin";
Dir::Etc::SourceList "{d}/sources.list";
Dir::Etc::SourceParts "{d}/sources.list.d";
Dir::Etc::Preferences "{d}/preferences";
Dir::Etc::PreferencesParts "{d}/preferences.d";
APT::Architecture "{architecture}";
#clear APT::Architectures;
APT::Architectures {{ "{architecture}"; }};
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
// The host's update hooks are for the host's index.
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
"#
    );
    if is_root() {
        // apt would try to drop to the `_apt` user, who cannot write our
        // folders, and warn.
        config.push_str("APT::Sandbox::User \"root\";\n");
    }
    config
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The `.deb` in `folder`, if there is one.
fn deb_in(folder: &Path) -> Option<PathBuf> {
    std::fs::read_dir(folder)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
}

/// apt's error and warning lines (or the last lines if there are none).
fn complaints(stdout: &str, stderr: &str) -> String {
    let lines: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
    let mut marked: Vec<&str> = Vec::new();
    for line in &lines {
        if (line.starts_with("E:") || line.starts_with("W:")) && !marked.contains(line) {
            marked.push(line);
        }
    }
    marked.truncate(5);
    let chosen = if marked.is_empty() {
        &lines[lines.len().saturating_sub(3)..]
    } else {
        &marked[..]
    };
    if chosen.is_empty() {
        "no output".to_string()
    } else {
        chosen.join("\n    ")
    }
}

/// `apt-cache policy` output: each package with its candidate version.
pub(crate) fn parse_policy(text: &str) -> Vec<(String, Option<String>)> {
    let mut packages: Vec<(String, Option<String>)> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ')
            && let Some(name) = line.strip_suffix(':')
        {
            packages.push((name.to_string(), None));
        } else if let Some(candidate) = line.trim().strip_prefix("Candidate:")
            && let Some((_, slot)) = packages.last_mut()
        {
            let candidate = candidate.trim();
            *slot = (candidate != "(none)" && !candidate.is_empty()).then(|| candidate.to_string());
        }
    }
    packages
}

/// Debian control stanzas (`apt-cache show`): fields by name, continuation
/// lines joined with newlines.
pub(crate) fn parse_stanzas(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut stanzas = Vec::new();
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            last = None;
        } else if line.starts_with([' ', '\t']) {
            if let Some(value) = last.as_ref().and_then(|f| current.get_mut(f)) {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((field, value)) = line.split_once(':') {
            current.insert(field.to_string(), value.trim().to_string());
            last = Some(field.to_string());
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

/// A [`Package`] from an index record.
pub(crate) fn package_from_record(record: &BTreeMap<String, String>) -> Option<Package> {
    let sha256 = record.get("SHA256")?.to_ascii_lowercase();
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    Some(Package {
        name: record.get("Package")?.clone(),
        version: record.get("Version")?.clone(),
        architecture: record.get("Architecture")?.clone(),
        size: record.get("Size")?.parse().ok()?,
        sha256,
    })
}

/// The package names of a `Depends` field, every alternative included,
/// without version constraints or architecture qualifiers.
pub(crate) fn dependencies(field: &str) -> Vec<String> {
    field
        .split([',', '|'])
        .filter_map(|item| {
            let name = item.split_whitespace().next()?;
            let name = name.split(':').next().unwrap_or(name);
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// Extracts `members` (paths as the package's data archive names them, e.g.
/// `./boot/vmlinuz-6.1.0-56-arm64`) from a .deb into `dest`:
/// `dpkg-deb --fsys-tarfile DEB | tar -x MEMBERS`, so only what is needed is
/// decompressed onto the disk.
pub(crate) fn extract(deb: &Path, dest: &Path, members: &[&str]) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| error!("cannot run dpkg-deb: {e} (it is in the package dpkg)"))?;
    let tar_input = dpkg
        .stdout
        .take()
        .ok_or_else(|| error!("dpkg-deb has no output pipe"))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .args(["--no-same-owner", "-f", "-", "--"])
        .args(members)
        .stdin(tar_input)
        .output();
    let dpkg_out = dpkg.wait_with_output()?;
    let tar = tar.map_err(|e| error!("cannot run tar: {e}"))?;
    let name = deb.file_name().unwrap_or_default().to_string_lossy();
    if !tar.status.success() {
        return Err(error!(
            "extracting {} from {name} failed: {}",
            members.join(" "),
            String::from_utf8_lossy(&tar.stderr).trim()
        ));
    }
    if !dpkg_out.status.success() {
        return Err(error!(
            "dpkg-deb --fsys-tarfile {name} failed: {}",
            String::from_utf8_lossy(&dpkg_out.stderr).trim()
        ));
    }
    Ok(())
}

/// A field of a .deb's control file (`dpkg-deb --field DEB FIELD`), empty
/// if the package has no such field.
pub(crate) fn control_field(deb: &Path, field: &str) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(field)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| error!("cannot run dpkg-deb: {e} (it is in the package dpkg)"))?;
    if !out.status.success() {
        return Err(error!(
            "dpkg-deb --field {} {field} failed: {}",
            deb.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::{
        BOOKWORM_ARM64, Index, Manifest, Package, Source, Sources, apt_config, dependencies,
        human_size, install, key, package_from_record, parse_policy, parse_sha256sum,
        parse_stanzas, remove_stale_temporaries, utc,
    };
    use crate::error;

    fn package(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            architecture: "arm64".into(),
            size: 1234,
            sha256: "ab".repeat(32),
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-debian-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const POLICY: &str = "\
linux-image-arm64:
  Installed: (none)
  Candidate: 6.1.192-3
  Version table:
     6.1.192-3 500
        500 http://deb.debian.org/debian-security bookworm-security/main arm64 Packages
     6.1.176-1 500
        500 http://deb.debian.org/debian bookworm/main arm64 Packages
busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+deb12u1+b1
  Version table:
     1:1.35.0-4+deb12u1+b1 500
        500 http://deb.debian.org/debian bookworm/main arm64 Packages
no-such-thing:
  Installed: (none)
  Candidate: (none)
  Version table:
";

    #[test]
    fn policy_gives_candidates() {
        assert_eq!(
            parse_policy(POLICY),
            vec![
                (
                    "linux-image-arm64".to_string(),
                    Some("6.1.192-3".to_string())
                ),
                (
                    "busybox-static".to_string(),
                    Some("1:1.35.0-4+deb12u1+b1".to_string())
                ),
                ("no-such-thing".to_string(), None),
            ]
        );
        assert!(parse_policy("").is_empty());
    }

    const SHOW: &str = "\
Package: linux-image-arm64
Source: linux-signed-arm64 (6.1.192+3)
Version: 6.1.192-3
Architecture: arm64
Provides: linux-image-generic, linux-latest-modules-6.1.0-57-arm64, wireguard-modules (= 1.0.0)
Depends: linux-image-6.1.0-57-arm64 (= 6.1.192-3)
Description: Linux for 64-bit ARMv8 machines (meta-package)
 This package depends on the latest Linux kernel
 .
 and more.
Filename: pool/updates/main/l/linux-signed-arm64/linux-image-arm64_6.1.192-3_arm64.deb
Size: 1444
SHA256: 6440CE08b384502c7b510977f782c541199acb0a26cbd852a3b95d5a3c4332c0

Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Architecture: arm64
Size: 822236
";

    #[test]
    fn show_gives_records_and_dependencies() {
        let stanzas = parse_stanzas(SHOW);
        assert_eq!(stanzas.len(), 2);
        let meta = &stanzas[0];
        assert_eq!(meta["Version"], "6.1.192-3");
        assert_eq!(
            meta["Description"],
            "Linux for 64-bit ARMv8 machines (meta-package)\nThis package depends on the latest Linux kernel\n.\nand more."
        );
        assert_eq!(
            dependencies(&meta["Depends"]),
            vec!["linux-image-6.1.0-57-arm64"]
        );
        let package = package_from_record(meta).unwrap();
        assert_eq!(package.name, "linux-image-arm64");
        assert_eq!(package.size, 1444);
        assert_eq!(
            package.sha256,
            "6440ce08b384502c7b510977f782c541199acb0a26cbd852a3b95d5a3c4332c0"
        );
        // No SHA256: not a usable record.
        assert_eq!(package_from_record(&stanzas[1]), None);
        assert_eq!(
            dependencies("libc6 (>= 2.34), a | b:any (<< 2), c:arm64"),
            vec!["libc6", "a", "b", "c"]
        );
    }

    #[test]
    fn sha256sum_output() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let text = format!("{a}  Image\n\\{b}  odd\\nname\nnot a sum\n");
        assert_eq!(parse_sha256sum(&text), vec![a, "b".repeat(64)]);
    }

    #[test]
    fn keys_tell_resolutions_apart() {
        let kernel = package("linux-image-6.1.0-56-arm64", "6.1.192-2");
        let busybox = package("busybox-static", "1:1.35.0-4+deb12u1+b1");
        let k = key(&[kernel.clone(), busybox.clone()], "r1");
        assert!(
            k.starts_with("linux-image-6.1.0-56-arm64_6.1.192-2-"),
            "{k}"
        );
        assert_eq!(k, key(&[kernel.clone(), busybox.clone()], "r1"));
        assert_ne!(k, key(&[kernel.clone(), busybox.clone()], "r2"));
        let newer = package("linux-image-6.1.0-56-arm64", "6.1.192-3");
        assert_ne!(k, key(&[newer, busybox.clone()], "r1"));
        let epoch = key(&[busybox], "r1");
        assert!(
            epoch.starts_with("busybox-static_1_1.35.0-4+deb12u1+b1-"),
            "{epoch}"
        );
        assert!(!epoch.contains(':') && !epoch.contains('/'));
    }

    #[test]
    fn index_and_manifest_round_trip() {
        let index = Index {
            resolved: 1_763_700_000,
            entry: "x-0123456789abcdef".into(),
            packages: vec![package("a", "1"), package("b", "2")],
        };
        let text = toml::to_string(&index).unwrap();
        assert_eq!(toml::from_str::<Index>(&text).unwrap(), index);
        let written = r#"
resolved = 1763700000
entry = "u-boot-qemu_2023.01+dfsg-2+deb12u3-0011223344556677"

[[packages]]
name = "u-boot-qemu"
version = "2023.01+dfsg-2+deb12u3"
architecture = "all"
size = 1830604
sha256 = "02a14f0876b76c0d7d7934e9b83a77515c5bdbad1e00af84c445bfeb1e6b8665"
"#;
        let parsed: Index = toml::from_str(written).unwrap();
        assert_eq!(parsed.packages[0].architecture, "all");
        assert_eq!(parsed.packages[0].size, 1_830_604);
        assert!(toml::from_str::<Index>("resolved = 1\n").is_err());
        let manifest: Manifest = toml::from_str(
            "revision = \"r\"\nbuilt = 5\npackages = []\n[[files]]\nname = \"Image\"\nsize = 3\nsha256 = \"00\"\n",
        )
        .unwrap();
        assert_eq!(manifest.files[0].name, "Image");
    }

    #[test]
    fn a_failed_build_leaves_nothing() {
        let base = scratch("fail");
        let result = install(&base, "entry", |work, out| {
            std::fs::write(out.join("Image"), b"half")?;
            std::fs::write(work.join("junk"), b"x")?;
            Err(error!("the network went away"))
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read_dir(&base).unwrap().count(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_good_build_lands_whole() {
        let base = scratch("good");
        let dir = install(&base, "entry", |_, out| {
            std::fs::write(out.join("Image"), b"kernel")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(dir, base.join("entry"));
        assert_eq!(std::fs::read(dir.join("Image")).unwrap(), b"kernel");
        let names: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["entry"]);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let base = scratch("stale");
        // No process has an ID this large (Linux's limit is 2^22).
        std::fs::create_dir_all(base.join(".tmp-99999999/out")).unwrap();
        std::fs::write(base.join(".tmp-99999998-index.toml"), "x").unwrap();
        let ours = base.join(format!(".tmp-{}", std::process::id()));
        std::fs::create_dir_all(&ours).unwrap();
        std::fs::create_dir_all(base.join("entry")).unwrap();
        remove_stale_temporaries(&base);
        let mut names: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![format!(".tmp-{}", std::process::id()), "entry".to_string()]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn sources_lists_per_recipe() {
        // The arm64 recipes' list, as it was before recipes could choose.
        assert_eq!(
            BOOKWORM_ARM64.list(),
            "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n\
             deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main\n\
             deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main\n"
        );
        assert_eq!(BOOKWORM_ARM64.state, "apt");
        let firmware = Sources {
            state: "apt-firmware",
            architecture: "arm64",
            lines: &[Source {
                uri: "http://deb.debian.org/debian",
                suite: "bookworm",
                components: "main non-free-firmware",
            }],
        };
        assert_eq!(
            firmware.list(),
            "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main non-free-firmware\n"
        );
        assert_eq!(
            BOOKWORM_ARM64.describe(),
            "arm64 package index (bookworm, bookworm-updates, bookworm-security)"
        );
        let config = apt_config(std::path::Path::new("/t/debian/apt-host"), "amd64");
        assert!(
            config.contains("APT::Architecture \"amd64\";\n"),
            "{config}"
        );
        assert!(
            config.contains("APT::Architectures { \"amd64\"; };\n"),
            "{config}"
        );
        assert!(config.contains("Dir::Etc::SourceList \"/t/debian/apt-host/sources.list\";"));
        assert!(!config.contains("arm64"), "{config}");
    }

    #[test]
    fn dates_and_sizes() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_763_717_400), "2025-11-21 09:30 UTC");
        assert_eq!(human_size(59_812_568), "59.8 MB");
        assert_eq!(human_size(822_236), "822 kB");
    }
}
