// SPDX-License-Identifier: Apache-2.0 OR MIT
//! xtask: builds, runs and tests Bulkhead. Run `cargo xtask help`.
//!
//! Every command first makes sure what it needs is installed ([`setup`]), so
//! that on a fresh machine `cargo xtask run` and `cargo xtask test` just work.
//! The modules: [`setup`] (toolchain, QEMU, U-Boot), [`image`] (building the
//! bootable image), [`system`] (system manifests and platform descriptions),
//! [`qemu`] (running a machine and reading its console), [`transcript`]
//! (who wrote each console line), [`test`] (the test suite CI runs), [`debian`] (files made from Debian packages, cached),
//! [`guests`] (the Linux guest's kernel and initramfs), [`sdcard`] (the Raspberry Pi 4's SD card image) and [`flash`] (writing it to a card).

mod bench;
mod debian;
mod flash;
mod fuzz;
mod guest_programs;
mod guests;
mod image;
#[cfg(test)]
mod layers;
mod qemu;
mod rpi4;
mod sdcard;
mod setup;
mod system;
mod test;
mod transcript;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

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

Environment:
  BULKHEAD_TOOLCHAIN=rustup|debian   force one way of building for the bare-metal
                                     target (default: rustup, Debian's rustc-web
                                     if the rustup target cannot be installed)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(args: &[String]) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(ExitCode::from(2));
    };
    match command.as_str() {
        "run" => run(rest),
        "build" => build(rest),
        "test" => test::main(rest),
        "check" => check(rest),
        "bench" => bench::main(rest),
        "guests" => guests::main(rest),
        "fuzz" => fuzz::main(rest),
        "sdcard" => sdcard::main(rest),
        "flash" => flash::main(rest),
        "setup" => {
            let tools = setup::ensure(setup::Needs { uboot: true })?;
            setup::ensure_card_tools()?;
            println!("setup: everything is installed; {}", tools.describe_qemu());
            Ok(ExitCode::SUCCESS)
        }
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(error!("unknown command `{other}`; try `cargo xtask help`")),
    }
}

/// Options shared by `run` and `build`.
struct RunOptions {
    system: PathBuf,
    timeout: Option<Duration>,
    gic: Gic,
    smp: u32,
    memory: String,
    release: bool,
    qemu_args: Vec<String>,
    guest: system::GuestChoice,
    /// `--board`: a platform folder, or `None` for the manifest's.
    board: Option<String>,
}

fn parse_run_options(args: &[String]) -> Result<RunOptions> {
    let mut options = RunOptions {
        system: root().join("systems/demo.toml"),
        timeout: None,
        gic: Gic::V3,
        smp: 4,
        memory: "1G".into(),
        release: true,
        qemu_args: Vec::new(),
        guest: system::GuestChoice::default(),
        board: None,
    };
    let mut args = args.iter();
    let mut system_given = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| error!("{name} needs a value"))
        };
        match arg.as_str() {
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| error!("--timeout takes whole seconds, not `{v}`"))?;
                options.timeout = Some(Duration::from_secs(secs));
            }
            "--gic" => {
                options.gic = match value("--gic")?.as_str() {
                    "v2" | "2" => Gic::V2,
                    "v3" | "3" => Gic::V3,
                    other => return Err(error!("--gic takes v2 or v3, not `{other}`")),
                }
            }
            "--smp" => {
                let v = value("--smp")?;
                options.smp = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=8).contains(n))
                    .ok_or_else(|| error!("--smp takes a core count from 1 to 8, not `{v}`"))?;
            }
            "--memory" => {
                let v = value("--memory")?;
                qemu::parse_memory(&v)?;
                options.memory = v;
            }
            "--board" => {
                options.board = match value("--board")?.as_str() {
                    "virt" | "qemu-virt" => None,
                    "rpi4" => Some(rpi4::PLATFORM.to_owned()),
                    other => return Err(error!("--board takes virt or rpi4, not `{other}`")),
                }
            }
            "--debug" => options.release = false,
            "--kernel" => options.guest.kernel = Some(PathBuf::from(value("--kernel")?)),
            "--initrd" => options.guest.initrd = Some(PathBuf::from(value("--initrd")?)),
            "--" => {
                options.qemu_args.extend(args.by_ref().cloned());
            }
            flag if flag.starts_with('-') => {
                return Err(error!("unknown option `{flag}`; try `cargo xtask help`"));
            }
            path if !system_given => {
                options.system = PathBuf::from(path);
                system_given = true;
            }
            extra => {
                return Err(error!(
                    "unexpected argument `{extra}`; try `cargo xtask help`"
                ));
            }
        }
    }
    Ok(options)
}

fn build(args: &[String]) -> Result<ExitCode> {
    let options = parse_run_options(args)?;
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let system =
        system::System::load_for(&options.system, &options.guest, options.board.as_deref())?;
    let image = image::build_system(
        &tools,
        &system,
        image::Variant {
            release: options.release,
            fault_injection: false,
            lock_count: false,
        },
    )?;
    println!("{}", image.display());
    Ok(ExitCode::SUCCESS)
}

fn check(args: &[String]) -> Result<ExitCode> {
    let [path] = args else {
        return Err(error!(
            "`cargo xtask check` takes one system manifest, e.g. systems/demo.toml"
        ));
    };
    match system::System::load(std::path::Path::new(path)) {
        Ok(system) => {
            print!("{}", system.compiled.report);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    let options = parse_run_options(args)?;
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let system =
        system::System::load_for(&options.system, &options.guest, options.board.as_deref())?;
    let image = image::build_system(
        &tools,
        &system,
        image::Variant {
            release: options.release,
            fault_injection: false,
            lock_count: false,
        },
    )?;
    if system.platform.name == rpi4::PLATFORM {
        let machine = Machine {
            extra: options.qemu_args.clone(),
            ..rpi4::machine(&system.platform, image)?
        };
        return run_machine(&tools, &system, &options, &machine);
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
    run_machine(&tools, &system, &options, &machine)
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
        options.system.display(),
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
