// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The compiler never panics, whatever it is given: random text, random
//! edits of good manifests, and numbers at the edges of every range.

use std::path::{Path, PathBuf};

use hv_manifest::{Environment, compile_source_in};
use proptest::prelude::{Strategy, any, prop, prop_assert, proptest};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn environment() -> Environment {
    let programs = ["console", "hello", "ping", "uart-pl011", "vmm"];
    let guest = root().join("tests/manifests/guest");
    Environment::new(&root(), programs.iter().map(|p| (*p).to_owned()).collect())
        .with_platform_dir(Path::new("tests/manifests/platforms"))
        .with_default_guest(guest.join("Image"), guest.join("initrd"))
}

/// Compiles and checks the one promise every outcome keeps: an error report
/// is never empty and every line of it is an `error:` or a `help:` line.
fn compiles_without_panic(source: &str) -> bool {
    // As if it lay beside the good fixtures, so `../guest/Image` is found.
    let folder = root().join("tests/manifests/ok");
    match compile_source_in("fuzz.toml", &folder, source, &environment()) {
        Ok(compiled) => compiled.manifest.validate().is_ok(),
        Err(errors) => {
            let text = errors.to_string();
            !errors.is_empty()
                && text
                    .lines()
                    .all(|line| line.starts_with("error: ") || line.starts_with("  help: "))
        }
    }
}

/// Pieces of manifests, for building plausible garbage.
const TOKENS: [&str; 57] = [
    "[system]\n",
    "[partitions.a]\n",
    "[partitions.b]\n",
    "[[channels]]\n",
    "name = \"t\"\n",
    "platform = \"qemu-virt\"\n",
    "platform = \"odd-board\"\n",
    "program = \"hello\"\n",
    "memory = \"64K\"\n",
    "memory = { size = \"4K\", base = 0x5000_0000 }\n",
    "memory = 0xFFFF_FFFF_FFFF_F000\n",
    "vcpus = 8\n",
    "cores = [0, 3]\n",
    "priority = 255\n",
    "devices = [\"uart0\", \"twin\"]\n",
    "irqs = { uart0 = \"n\", twin = { channel = \"n\", bit = 63 } }\n",
    "fault = \"restart\"\n",
    "kind = \"endpoint\"\n",
    "kind = \"notification\"\n",
    "kind = \"shared-memory\"\n",
    "server = \"a\"\n",
    "clients = [\"b\", { partition = \"a\", badge = 9223372036854775807 }]\n",
    "waiter = \"a\"\n",
    "signallers = [{ partition = \"b\", bit = 0 }]\n",
    "size = \"18446744073709551615\"\n",
    "writers = [\"a\"]\n",
    "readers = [\"b\"]\n",
    "ends = [{ partition = \"a\", rights = \"rwx\" }]\n",
    "name = \"n\"\n",
    "grant = true\n",
    "kind = \"vm\"\n",
    "monitor = \"a\"\n",
    "monitor = \"b\"\n",
    "memory = \"64M\"\n",
    "kernel = \"../guest/Image\"\n",
    "kernel = \"debian\"\n",
    "initrd = \"none\"\n",
    "initrd = \"../guest\"\n",
    "bootargs = \"é\"\n",
    "[schedule]\n",
    "major-frame = \"10ms\"\n",
    "[[schedule.timeline]]\n",
    "cores = [0, 9, 255]\n",
    "windows = [{ length = \"10ms\", partitions = [\"a\", \"b\"] }]\n",
    "windows = [{ length = \"18446744073709551615us\", background = true }, { length = \"0s\" }]\n",
    "budget = { time = \"1ms\", period = \"18446744073709551615us\" }\n",
    "vcpus = 2\n",
    "= ",
    "\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "#",
    "é",
];

fn garbage() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..40)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn random_token_soup_never_panics(source in garbage()) {
        prop_assert!(compiles_without_panic(&source));
    }

    #[test]
    fn random_text_never_panics(source in "[\\[\\]{}=\",.#\\na-z0-9_ -]{0,200}") {
        prop_assert!(compiles_without_panic(&source));
    }

    #[test]
    fn random_edits_of_good_manifests_never_panic(
        which in 0usize..7,
        edits in prop::collection::vec((any::<u16>(), 0u8..3, prop::sample::select(TOKENS.to_vec())), 1..6),
    ) {
        let names = [
            "demo",
            "explicit",
            "odd-board",
            "kernel-only",
            "vm-debian",
            "vm-two-guests",
            "schedule",
        ];
        let path = root().join(format!("tests/manifests/ok/{}.toml", names[which]));
        let mut chars: Vec<char> = std::fs::read_to_string(path).unwrap().chars().collect();
        for (position, operation, token) in edits {
            let at = usize::from(position) % (chars.len() + 1);
            match operation {
                0 => {
                    let end = (at + 8).min(chars.len());
                    chars.drain(at..end);
                }
                1 => {
                    chars.splice(at..at, token.chars());
                }
                _ => {
                    if at < chars.len() {
                        chars[at] = token.chars().next().unwrap_or(' ');
                    }
                }
            }
        }
        let source: String = chars.into_iter().collect();
        prop_assert!(compiles_without_panic(&source));
    }
}

#[test]
fn numbers_at_the_edges_never_panic() {
    let values = [
        "0",
        "-1",
        "1",
        "255",
        "256",
        "4096",
        "0x7FFF_FFFF_FFFF_FFFF",
        "-0x1",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "1.5",
        "inf",
        "nan",
        "\"18446744073709551615\"",
        "\"18446744073709551616\"",
        "\"16T\"",
        "\"0K\"",
        "\"18446744073709551615us\"",
        "\"4294967296us\"",
        "\"0us\"",
        "\"10s\"",
        "\"\"",
        "[]",
        "{}",
        "true",
    ];
    for value in values {
        for key in [
            "memory", "vcpus", "priority", "cores", "devices", "irqs", "fault", "program", "kind",
            "monitor", "kernel", "initrd", "bootargs",
        ] {
            let source = format!(
                "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n[partitions.a]\nprogram = \"hello\"\n{}{key} = {value}\n",
                if key == "memory" {
                    ""
                } else {
                    "memory = \"4K\"\n"
                }
            );
            assert!(compiles_without_panic(&source), "{key} = {value}");
        }
        let source = format!(
            "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n[partitions.a]\nprogram = \"hello\"\nmemory = {{ size = \"4K\", base = {value} }}\n"
        );
        assert!(compiles_without_panic(&source), "base = {value}");
        for key in ["memory", "vcpus", "monitor", "kernel", "initrd", "bootargs"] {
            let source = format!(
                "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n[partitions.v]\nkind = \"vm\"\n{}{}{key} = {value}\n[partitions.m]\nprogram = \"vmm\"\nmemory = \"1M\"\n",
                if key == "memory" {
                    ""
                } else {
                    "memory = \"64M\"\n"
                },
                if key == "monitor" {
                    ""
                } else {
                    "monitor = \"m\"\n"
                },
            );
            assert!(compiles_without_panic(&source), "vm {key} = {value}");
        }
        let schedule = |frame: &str, cores: &str, length: &str, budget: &str| {
            format!(
                "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n[partitions.a]\nprogram = \"hello\"\n\
                 memory = \"4K\"\ncores = [0]\nbudget = {{ time = {budget}, period = {budget} }}\n\
                 [schedule]\nmajor-frame = {frame}\n[[schedule.timeline]]\ncores = {cores}\n\
                 windows = [{{ length = {length}, partitions = [\"a\"] }}, \
                 {{ length = {length}, background = true }}]\n"
            )
        };
        let ms = "\"5ms\"";
        for source in [
            schedule(value, "[0, 1, 2, 3]", ms, ms),
            schedule("\"10ms\"", value, ms, ms),
            schedule("\"10ms\"", &format!("[{value}]"), ms, ms),
            schedule("\"10ms\"", "[0, 1, 2, 3]", value, ms),
            schedule("\"10ms\"", "[0, 1, 2, 3]", ms, value),
        ] {
            assert!(compiles_without_panic(&source), "{source}");
        }
    }
}
