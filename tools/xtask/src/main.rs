// SPDX-License-Identifier: Apache-2.0 OR MIT
//! xtask: builds, runs and tests Bulkhead. Run `cargo xtask help`.
//!
//! The command line is read whole, with `lexopt` ([`args`], and a `parse`
//! function in each command's module), before anything is done.
//! Every command first makes sure what it needs is installed ([`setup`]), so
//! that on a fresh machine `cargo xtask run` and `cargo xtask test` just work.
//! The modules: [`setup`] (toolchain, QEMU, U-Boot), [`image`] (building the
//! bootable image), [`system`] (system manifests and platform descriptions),
//! [`qemu`] (running a machine and reading its console), [`transcript`]
//! (who wrote each console line), [`test`] (the test suite CI runs), [`prove`] (the machine
//! checks of `proofs/`, and the stage-2 tables of every manifest validated), [`debian`] (files made from Debian packages, cached),
//! [`guests`] (the Linux guest's kernel and initramfs), [`sdcard`] (the Raspberry Pi 4's SD card image) and [`flash`] (writing it to a card).

mod args;
mod bench;
mod debian;
mod flash;
mod fuzz;
mod guest_programs;
mod guests;
mod image;
#[cfg(test)]
mod layers;
mod prove;
mod qemu;
mod rpi4;
mod sdcard;
mod setup;
mod system;
mod test;
mod transcript;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use args::{Long, Short, Value};
use qemu::{Gic, Machine, Verdict};

/// An error for the user: one sentence that says what went wrong and, where
/// possible, what to do about it.
#[derive(Debug)]
pub(crate) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

/// Shorthand for results whose error is shown to the user.
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Makes an [`Error`] from a format string.
macro_rules! error {
    ($($arg:tt)*) => { $crate::Error(format!($($arg)*)) };
}
pub(crate) use error;

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

const HELP: &str = "\
cargo xtask COMMAND [OPTIONS]

Commands:
  run [SYSTEM.toml] [OPTIONS] [-- QEMU-ARGS...]
        Build the system (default: systems/demo.toml) and boot it in QEMU with
        the console on this terminal. Ctrl-A X quits QEMU.
        --timeout SECS   stop after SECS; exit 0 if the system was healthy
                         (ready, no panic), non-zero otherwise
        --board virt|rpi4  QEMU's virt (default) or the Raspberry Pi 4 in QEMU 10's
                         raspi4b, with Debian's bcm2711-rpi-4-b.dtb (the system's
                         devices must be ones the board's platform.toml names)
        --gic v2|v3      interrupt controller (default v3)
        --smp N          cores (default 4)
        --memory SIZE    RAM, as QEMU's -m takes it (default 1G)
        --debug          build without optimisation
        --kernel PATH    an arm64 Linux Image for virtual machines whose
                         manifest takes the default (Debian's, from
                         `cargo xtask guests`)
        --initrd PATH    an initramfs for them, likewise
  build [SYSTEM.toml] [--board virt|rpi4] [--debug] [--kernel PATH] [--initrd PATH]
        Build the bootable image (kernel, programs, compiled manifest) and
        print its path.
  check SYSTEM.toml
        Check a system manifest: print every error (file, line, column, key,
        and what would fix it) and exit 1, or print the report (memory map,
        capabilities, channel graph).
  test [--no-lint] [FILTER...]
        Everything CI runs: host unit tests, clippy, rustfmt, the unsafe audit
        and the QEMU system tests (only those whose name contains a FILTER, if
        given). Ends with `N passed, N failed`.
  bench [FILTER] [--check] [--update-baseline] [--peers]
        Boot costs in exact instruction counts (QEMU -icount shift=0), each run
        twice to prove it repeatable, against the budgets in bench.rs, and the
        kernel's size (bytes, lines of code); only the benchmarks whose name
        contains FILTER, if given. Writes target/bench/figures.json.
        --check          fail if a figure grew more than 2% over the baseline
                         (tools/xtask/bench-baseline.json) measured with the
                         same compiler, QEMU and guest; skip those that were not
        --update-baseline  write the figures measured into the baseline
        --peers          instead: the probe guest under Bulkhead and under Xen
                         4.17 (Debian's, as dom0) in the same QEMU, side by
                         side with the ratio
  fuzz TARGET [--time SECS]
        Run one fuzz target under libFuzzer (cargo-fuzz on the nightly
        toolchain, installed into target/tools on first use) for SECS seconds
        (default 60): hypercall, state_machine, boot_package, device_tree or
        manifest. New inputs are kept in fuzz/corpus/TARGET, crashes in
        fuzz/regressions/TARGET; `cargo xtask test` replays both.
  prove [--quick]
        Every machine check of proofs/ (proofs/README.md), as a table:
        property, method, scope, states explored, result, time. The stage-2
        tables of every manifest in systems/ and tests/qemu/, built with the
        kernel's code and walked entry by entry; hv-core's code checked
        exhaustively to a bound (stateright) with deliberately broken rules
        that must be caught; z3 proofs about the design; spin models of the
        multicore protocols. Installs z3-solver (PyPI, into a venv) and spin
        (Debian) into target/ on first use. --quick: the profile `cargo
        xtask test` runs.
  guests [--refresh]
        Fetch Debian's arm64 Linux kernel and busybox, build the guest
        initramfs, cache both in target/guests/ and print their paths and
        versions. Once cached, no network is needed.
        --refresh        look for newer Debian packages
  sdcard [SYSTEM.toml] --board rpi4 -o FILE [OPTIONS]
        Write an SD card image for the Raspberry Pi 4 (Pi 400, CM4): an MBR
        with one FAT32 boot partition holding Debian's Pi firmware and device
        trees, config.txt and the Bulkhead image (docs/boards.md).
        --loader firmware|u-boot  what starts Bulkhead: the Pi's firmware
                         (default), or Debian's U-Boot through boot.scr
        --image FILE     put this Bulkhead image on the card instead of
                         building SYSTEM.toml
        --force          replace FILE if it exists (only a regular file)
        --refresh        look for newer Debian packages
        --debug, --kernel PATH, --initrd PATH   as for build
  flash --board rpi4 --device /dev/sdX [SYSTEM.toml] [OPTIONS]
        Build the card image as sdcard does and write it to an SD card or USB
        card reader, then read it back and compare. Refuses anything but a
        whole, unmounted SD/MMC or USB block device of 64 MiB to 2 TiB that
        does not hold the running system; shows the model and size and asks.
        --yes            do not ask
        --loader, --image, --refresh, --debug, --kernel, --initrd   as for sdcard
  setup
        Install what is missing (bare-metal Rust target, QEMU 10.0 and U-Boot
        into target/ from Debian's archive, the tools the SD card test checks
        cards with) and exit.
  help
        This text.

Options take their value apart or attached: --board rpi4 or --board=rpi4,
-o FILE or -oFILE. A value that starts with `-` must be attached (--kernel=-x):
apart, it is taken for the next option and the value for missing.

Environment:
  BULKHEAD_TOOLCHAIN=rustup|debian   force one way of building for the bare-metal
                                     target (default: rustup, Debian's rustc-web
                                     if the rustup target cannot be installed)
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        print!("{HELP}");
        return ExitCode::from(2);
    }
    // The whole command line is read before anything is done.
    let result = Command::parse(&args).and_then(Command::execute);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// A subcommand and its options, as read from the command line.
#[derive(Debug)]
enum Command {
    Run(RunOptions),
    Build(BuildOptions),
    Check(PathBuf),
    Test(test::Options),
    Bench(bench::Options),
    Guests(debian::Resolve),
    Fuzz(fuzz::Options),
    Prove(prove::Options),
    Sdcard(sdcard::Options),
    Flash(flash::Options),
    Setup,
    Help,
}

impl Command {
    /// Reads `args`: a command and its arguments.
    fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Self> {
        let Some((command, rest)) = args.split_first() else {
            return Err(error!("no command; try `cargo xtask help`"));
        };
        let command = command.as_ref().to_string_lossy();
        Ok(match &*command {
            "run" => Self::Run(parse_run(rest)?),
            "build" => Self::Build(parse_build(rest)?),
            "check" => Self::Check(parse_check(rest)?),
            "test" => Self::Test(test::parse(rest)?),
            "bench" => Self::Bench(bench::parse(rest)?),
            "guests" => Self::Guests(guests::parse(rest)?),
            "fuzz" => Self::Fuzz(fuzz::parse(rest)?),
            "prove" => Self::Prove(prove::parse(rest)?),
            "sdcard" => Self::Sdcard(sdcard::parse(rest)?),
            "flash" => Self::Flash(flash::parse(rest)?),
            "setup" => {
                args::none("setup", rest)?;
                Self::Setup
            }
            "help" | "--help" | "-h" => {
                args::none("help", rest)?;
                Self::Help
            }
            other => return Err(error!("unknown command `{other}`; try `cargo xtask help`")),
        })
    }

    /// Does what was asked.
    fn execute(self) -> Result<ExitCode> {
        match self {
            Self::Run(options) => run(&options),
            Self::Build(options) => build(&options),
            Self::Check(path) => Ok(check(&path)),
            Self::Test(options) => test::main(&options),
            Self::Bench(options) => bench::main(&options),
            Self::Guests(resolve) => guests::main(resolve),
            Self::Fuzz(options) => fuzz::main(&options),
            Self::Prove(options) => prove::main(&options),
            Self::Sdcard(options) => sdcard::main(&options),
            Self::Flash(options) => flash::main(&options),
            Self::Setup => {
                let tools = setup::ensure(setup::Needs { uboot: true })?;
                setup::ensure_card_tools()?;
                println!("setup: everything is installed; {}", tools.describe_qemu());
                Ok(ExitCode::SUCCESS)
            }
            Self::Help => {
                print!("{HELP}");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// `build`'s options, which `run` takes too.
#[derive(Debug, PartialEq, Eq)]
struct BuildOptions {
    /// The system manifest (default: `systems/demo.toml`).
    system: PathBuf,
    /// Whether it was given.
    system_given: bool,
    /// Not `--debug`.
    release: bool,
    /// `--kernel` and `--initrd`.
    guest: system::GuestChoice,
    /// `--board`: a platform folder, or `None` for the manifest's.
    board: Option<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            system: root().join("systems/demo.toml"),
            system_given: false,
            release: true,
            guest: system::GuestChoice::default(),
            board: None,
        }
    }
}

impl BuildOptions {
    /// Reads `option` (`--board` and the like) if it is one of build's;
    /// `false` if it is not.
    fn option(&mut self, option: &str, parser: &mut args::Parser) -> args::Parsed<bool> {
        match option {
            "--board" => {
                self.board = match args::string(parser, option)?.as_str() {
                    "virt" | "qemu-virt" => None,
                    "rpi4" => Some(rpi4::PLATFORM.to_owned()),
                    other => {
                        return Err(args::bad(format!(
                            "--board takes virt or rpi4, not `{other}`"
                        )));
                    }
                }
            }
            "--debug" => self.release = false,
            "--kernel" => self.guest.kernel = Some(args::path(parser, option)?),
            "--initrd" => self.guest.initrd = Some(args::path(parser, option)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Takes the positional argument `value`: the system manifest.
    fn positional(&mut self, value: OsString) -> args::Parsed<()> {
        args::manifest(&mut self.system, &mut self.system_given, value)
    }
}

/// `run`'s options.
#[derive(Debug, PartialEq, Eq)]
struct RunOptions {
    build: BuildOptions,
    timeout: Option<Duration>,
    gic: Gic,
    smp: u32,
    memory: String,
    /// After `--`: QEMU's.
    qemu_args: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            build: BuildOptions::default(),
            timeout: None,
            gic: Gic::V3,
            smp: 4,
            memory: "1G".into(),
            qemu_args: Vec::new(),
        }
    }
}

/// `cargo xtask run [SYSTEM.toml] [OPTIONS] [-- QEMU-ARGS...]`.
fn parse_run<A: AsRef<OsStr>>(args: &[A]) -> Result<RunOptions> {
    args::parse_for("run", args, |parser| {
        let mut options = RunOptions::default();
        loop {
            if let Some(rest) = args::after_dashes(parser) {
                options.qemu_args = rest
                    .into_iter()
                    .map(args::text)
                    .collect::<args::Parsed<_>>()?;
                break;
            }
            let Some(arg) = parser.next()? else { break };
            match arg {
                Long("timeout") => {
                    let v = args::string(parser, "--timeout")?;
                    let secs: u64 = v.parse().map_err(|_| {
                        args::bad(format!("--timeout takes whole seconds, not `{v}`"))
                    })?;
                    options.timeout = Some(Duration::from_secs(secs));
                }
                Long("gic") => {
                    options.gic = match args::string(parser, "--gic")?.as_str() {
                        "v2" | "2" => Gic::V2,
                        "v3" | "3" => Gic::V3,
                        other => {
                            return Err(args::bad(format!("--gic takes v2 or v3, not `{other}`")));
                        }
                    }
                }
                Long("smp") => {
                    let v = args::string(parser, "--smp")?;
                    options.smp =
                        v.parse()
                            .ok()
                            .filter(|n| (1..=8).contains(n))
                            .ok_or_else(|| {
                                args::bad(format!(
                                    "--smp takes a core count from 1 to 8, not `{v}`"
                                ))
                            })?;
                }
                Long("memory") => {
                    let v = args::string(parser, "--memory")?;
                    qemu::parse_memory(&v).map_err(|e| args::bad(e.to_string()))?;
                    options.memory = v;
                }
                Long(name) => {
                    let name = format!("--{name}");
                    if !options.build.option(&name, parser)? {
                        return Err(args::ArgError::UnexpectedOption(name));
                    }
                }
                Value(value) => options.build.positional(value)?,
                other @ Short(_) => return Err(other.unexpected()),
            }
        }
        Ok(options)
    })
}

/// `cargo xtask build [SYSTEM.toml] [OPTIONS]`.
fn parse_build<A: AsRef<OsStr>>(args: &[A]) -> Result<BuildOptions> {
    args::parse_for("build", args, |parser| {
        let mut options = BuildOptions::default();
        loop {
            if args::after_dashes(parser).is_some() {
                return Err(args::bad(
                    "-- QEMU-ARGS is for `cargo xtask run`: build boots nothing",
                ));
            }
            let Some(arg) = parser.next()? else { break };
            match arg {
                Long(name) => {
                    let name = format!("--{name}");
                    if !options.option(&name, parser)? {
                        if ["--timeout", "--gic", "--smp", "--memory"].contains(&name.as_str()) {
                            return Err(args::bad(format!(
                                "{name} is for `cargo xtask run`, which boots what build builds"
                            )));
                        }
                        return Err(args::ArgError::UnexpectedOption(name));
                    }
                }
                Value(value) => options.positional(value)?,
                other @ Short(_) => return Err(other.unexpected()),
            }
        }
        Ok(options)
    })
}

/// `cargo xtask check SYSTEM.toml`.
fn parse_check<A: AsRef<OsStr>>(args: &[A]) -> Result<PathBuf> {
    args::parse_for("check", args, |parser| {
        let mut path = None;
        while let Some(arg) = parser.next()? {
            match arg {
                Value(value) if path.is_none() => path = Some(PathBuf::from(value)),
                other => return Err(other.unexpected()),
            }
        }
        path.ok_or_else(|| args::bad("takes one system manifest, e.g. systems/demo.toml"))
    })
}

/// Loads the system `options` name and builds its image.
fn build_image(tools: &setup::Tools, options: &BuildOptions) -> Result<(system::System, PathBuf)> {
    let system =
        system::System::load_for(&options.system, &options.guest, options.board.as_deref())?;
    let image = image::build_system(tools, &system, image::Variant::plain(options.release))?;
    Ok((system, image))
}

fn build(options: &BuildOptions) -> Result<ExitCode> {
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let (_, image) = build_image(&tools, options)?;
    println!("{}", image.display());
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path) -> ExitCode {
    match system::System::load(path) {
        Ok(system) => {
            print!("{}", system.compiled.report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &RunOptions) -> Result<ExitCode> {
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let (system, image) = build_image(&tools, &options.build)?;
    if system.platform.name == rpi4::PLATFORM {
        let machine = Machine {
            extra: options.qemu_args.clone(),
            ..rpi4::machine(&system.platform, image)?
        };
        return run_machine(&tools, &system, options, &machine);
    }
    let machine = Machine {
        platform: &system.platform,
        gic: options.gic,
        smp: options.smp,
        memory: options.memory.clone(),
        kernel: Some(image),
        extra: options.qemu_args.clone(),
        ..Machine::default_for(&system.platform)
    };
    run_machine(&tools, &system, options, &machine)
}

/// Boots `machine` for `cargo xtask run` and judges the run.
fn run_machine(
    tools: &setup::Tools,
    system: &system::System,
    options: &RunOptions,
    machine: &Machine<'_>,
) -> Result<ExitCode> {
    eprintln!(
        "xtask: booting system `{}` ({}) on {}; Ctrl-A X quits, Ctrl-A Ctrl-A N gives console client N the keyboard",
        system.name,
        options.build.system.display(),
        machine.describe()
    );
    if let Some(guest) = &system.guest {
        eprintln!("xtask: guest: {guest}");
    }
    let outcome = qemu::run(
        tools,
        machine,
        &qemu::RunSpec {
            timeout: options.timeout,
            interactive: true,
            ..Default::default()
        },
    )?;
    let verdict = outcome.verdict();
    match &verdict {
        Verdict::Healthy => eprintln!("xtask: the system was healthy"),
        Verdict::Failed(why) => eprintln!("xtask: FAILED: {why}"),
    }
    Ok(if matches!(verdict, Verdict::Healthy) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{BuildOptions, Command, Gic, RunOptions, parse_build, parse_check, parse_run};

    #[test]
    fn run_options() {
        let error = |args: &[&str]| parse_run(args).unwrap_err().to_string();
        assert_eq!(parse_run::<&str>(&[]).unwrap(), RunOptions::default());
        let o = parse_run(&["tests/qemu/isolation.toml"]).unwrap();
        assert_eq!(o.build.system, Path::new("tests/qemu/isolation.toml"));
        let o = parse_run(&[
            "systems/linux.toml",
            "--timeout",
            "30",
            "--gic",
            "v2",
            "--smp=2",
            "--memory",
            "512M",
            "--debug",
            "--kernel",
            "Image",
            "--initrd",
            "initrd.gz",
            "--board",
            "virt",
            "--",
            "-S",
            "--kernel",
            "--",
        ])
        .unwrap();
        assert_eq!(o.timeout, Some(Duration::from_secs(30)));
        assert_eq!((o.gic, o.smp, o.memory.as_str()), (Gic::V2, 2, "512M"));
        assert!(!o.build.release);
        assert_eq!(o.build.guest.kernel.as_deref(), Some(Path::new("Image")));
        assert_eq!(
            o.build.guest.initrd.as_deref(),
            Some(Path::new("initrd.gz"))
        );
        assert_eq!(o.build.board, None);
        assert_eq!(o.qemu_args, ["-S", "--kernel", "--"]);
        let o = parse_run(&["--board", "rpi4", "tests/qemu/pingpong.toml"]).unwrap();
        assert_eq!(o.build.board.as_deref(), Some(super::rpi4::PLATFORM));
        assert_eq!(o.build.system, Path::new("tests/qemu/pingpong.toml"));
        // Bad input.
        assert_eq!(
            error(&["--board", "pi5"]),
            "cargo xtask run: --board takes virt or rpi4, not `pi5`"
        );
        assert_eq!(
            error(&["--board"]),
            "cargo xtask run: --board needs a value; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--board", "--debug"]),
            "cargo xtask run: --board needs a value; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--debug=no"]),
            "cargo xtask run: --debug takes no value, not `no`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--verbose"]),
            "cargo xtask run: unknown option `--verbose`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["-v"]),
            "cargo xtask run: unknown option `-v`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["a.toml", "b.toml"]),
            "cargo xtask run: takes one system manifest, not both `a.toml` and `b.toml`"
        );
        assert_eq!(
            error(&["--timeout", "1.5"]),
            "cargo xtask run: --timeout takes whole seconds, not `1.5`"
        );
        assert_eq!(
            error(&["--gic", "v4"]),
            "cargo xtask run: --gic takes v2 or v3, not `v4`"
        );
        assert_eq!(
            error(&["--smp", "9"]),
            "cargo xtask run: --smp takes a core count from 1 to 8, not `9`"
        );
        assert!(error(&["--memory", "lots"]).contains("`lots` is not a memory size"));
    }

    #[test]
    fn build_options() {
        let error = |args: &[&str]| parse_build(args).unwrap_err().to_string();
        assert_eq!(parse_build::<&str>(&[]).unwrap(), BuildOptions::default());
        let o = parse_build(&["--board", "rpi4"]).unwrap();
        assert_eq!(o.board.as_deref(), Some(super::rpi4::PLATFORM));
        assert!(o.release && !o.system_given);
        let o = parse_build(&[
            "systems/linux.toml",
            "--debug",
            "--kernel=K",
            "--initrd",
            "I",
        ])
        .unwrap();
        assert_eq!(o.system, Path::new("systems/linux.toml"));
        assert!(!o.release);
        assert_eq!(o.guest.kernel.as_deref(), Some(Path::new("K")));
        assert_eq!(o.guest.initrd.as_deref(), Some(Path::new("I")));
        assert_eq!(
            error(&["--smp", "2"]),
            "cargo xtask build: --smp is for `cargo xtask run`, which boots what build builds"
        );
        assert_eq!(
            error(&["--", "-S"]),
            "cargo xtask build: -- QEMU-ARGS is for `cargo xtask run`: build boots nothing"
        );
        assert_eq!(
            error(&["--kernel"]),
            "cargo xtask build: --kernel needs a value; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--board", "pi"]),
            "cargo xtask build: --board takes virt or rpi4, not `pi`"
        );
        assert_eq!(
            error(&["a.toml", "b.toml"]),
            "cargo xtask build: takes one system manifest, not both `a.toml` and `b.toml`"
        );
    }

    #[test]
    fn check_options() {
        let error = |args: &[&str]| parse_check(args).unwrap_err().to_string();
        assert_eq!(
            parse_check(&["systems/demo.toml"]).unwrap(),
            Path::new("systems/demo.toml")
        );
        assert_eq!(
            error(&[]),
            "cargo xtask check: takes one system manifest, e.g. systems/demo.toml"
        );
        assert_eq!(
            error(&["a.toml", "b.toml"]),
            "cargo xtask check: unexpected argument `b.toml`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--report", "a.toml"]),
            "cargo xtask check: unknown option `--report`; try `cargo xtask help`"
        );
    }

    #[test]
    fn commands() {
        let error = |args: &[&str]| Command::parse(args).unwrap_err().to_string();
        assert!(matches!(Command::parse(&["help"]), Ok(Command::Help)));
        assert!(matches!(Command::parse(&["--help"]), Ok(Command::Help)));
        assert!(matches!(Command::parse(&["-h"]), Ok(Command::Help)));
        assert!(matches!(Command::parse(&["setup"]), Ok(Command::Setup)));
        assert!(matches!(Command::parse(&["run"]), Ok(Command::Run(_))));
        assert!(matches!(Command::parse(&["build"]), Ok(Command::Build(_))));
        assert!(matches!(
            Command::parse(&["check", "x.toml"]),
            Ok(Command::Check(_))
        ));
        assert!(matches!(Command::parse(&["test"]), Ok(Command::Test(_))));
        assert!(matches!(Command::parse(&["bench"]), Ok(Command::Bench(_))));
        assert!(matches!(
            Command::parse(&["prove", "--quick"]),
            Ok(Command::Prove(_))
        ));
        assert!(matches!(
            Command::parse(&["guests"]),
            Ok(Command::Guests(_))
        ));
        assert!(matches!(
            Command::parse(&["fuzz", "manifest"]),
            Ok(Command::Fuzz(_))
        ));
        assert!(matches!(
            Command::parse(&["sdcard", "-o", "x.img"]),
            Ok(Command::Sdcard(_))
        ));
        assert!(matches!(
            Command::parse(&["flash", "--device", "/dev/sdb"]),
            Ok(Command::Flash(_))
        ));
        assert_eq!(
            error(&["launch"]),
            "unknown command `launch`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--board", "rpi4"]),
            "unknown command `--board`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["setup", "now"]),
            "cargo xtask setup: unexpected argument `now`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["help", "run"]),
            "cargo xtask help: unexpected argument `run`; try `cargo xtask help`"
        );
    }
}
