// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's size in lines of code: the figure `kernel-lines`.
//!
//! The rule, kept exact and simple:
//!
//! - **Files**: every `.rs` and `.S` file under `kernel/` and `platforms/`,
//!   except test files: those under a folder named `tests` (a crate's
//!   integration tests, and the submodules of a `tests` module), and every
//!   module file a `#[cfg(test)] mod NAME;` declares (`NAME.rs` or
//!   `NAME/mod.rs` where Rust looks for it), with the files of its own
//!   submodules (the folder `NAME/` beside it).
//! - **Lines**: a line counts if anything but white space is left once
//!   comments are removed: `//` to the end of the line (so doc comments
//!   `///` and `//!` too) and `/* ... */` (nested, as Rust nests them), but
//!   not what looks like one inside a string or character literal. Blank
//!   lines do not count.
//! - **Test code inside a file**: an item that follows an attribute
//!   `#[cfg(test)]` does not count, from the attribute to the end of the
//!   item: the `;` that ends it, or the `}` that closes its first `{`
//!   (braces in literals and comments are not counted). That is how a
//!   `#[cfg(test)] mod tests { ... }` block, and a test-only `use` or
//!   function, are left out. (`#[cfg(any(test, feature = "std"))]` code is
//!   not test-only, and counts.)
//! - **Checking code**: the same for `#[cfg(any(test, feature = "checks"))]`,
//!   exactly so written: hv-core's invariants and security properties,
//!   which only its tests, the fuzz targets and the bounded checker in
//!   `proofs/` build (with the feature `checks`), never a kernel.

use std::path::{Path, PathBuf};

/// The folders whose code is the kernel.
pub(crate) const FOLDERS: [&str; 2] = ["kernel", "platforms"];

/// The kernel's lines of code under `root` by the rule above.
pub(crate) fn count_tree(root: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for file in kernel_files(root)? {
        total += count(&std::fs::read_to_string(&file)?);
    }
    Ok(total)
}

/// The files the rule counts, sorted.
pub(crate) fn kernel_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for folder in FOLDERS {
        collect(&root.join(folder), &mut files)?;
    }
    files.sort();
    // Test modules declared out of line, and their folders of submodules.
    let mut excluded: Vec<PathBuf> = Vec::new();
    for file in files.iter().filter(|f| is_rust(f)) {
        let text = std::fs::read_to_string(file)?;
        for name in test_module_declarations(&text) {
            let folder = submodule_folder(file);
            excluded.push(folder.join(format!("{name}.rs")));
            excluded.push(folder.join(&name));
        }
    }
    files.retain(|f| !excluded.iter().any(|e| f.starts_with(e)));
    Ok(files)
}

fn is_rust(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rs")
}

/// Every `.rs` and `.S` file under `dir`, except in folders named `tests`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n != "tests" && n != "target")
            {
                collect(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "rs" || e == "S") {
            out.push(path);
        }
    }
    Ok(())
}

/// Where the files of the modules `file` declares are: beside it for a crate
/// root or `mod.rs`, in the folder of its name otherwise.
fn submodule_folder(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(""));
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("lib" | "main" | "mod") | None => parent.to_path_buf(),
        Some(stem) => parent.join(stem),
    }
}

/// Each `NAME` of a `#[cfg(test)] mod NAME;` in `text`.
pub(crate) fn test_module_declarations(text: &str) -> Vec<String> {
    let code = code_lines(text);
    let mut names = Vec::new();
    for (i, (line, raw)) in code.iter().zip(text.split('\n')).enumerate() {
        let Some(rest) = test_attribute(line, raw) else {
            continue;
        };
        // The item: the rest of the line, or the next line with code.
        let item = if rest.trim().is_empty() {
            code[i + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("#["))
                .unwrap_or("")
        } else {
            rest.trim()
        };
        let item = item.strip_prefix("pub ").unwrap_or(item);
        if let Some(name) = item
            .strip_prefix("mod ")
            .and_then(|r| r.trim().strip_suffix(';'))
        {
            names.push(name.trim().to_string());
        }
    }
    names
}

/// The attributes that make an item test (or checking) code.
const CFG_TEST: [&str; 2] = ["#[cfg(test)]", "#[cfg(any(test, feature = \"checks\"))]"];

/// If the code line `line` (from [`code_lines`], strings emptied) starts
/// with one of [`CFG_TEST`], as its source line `raw` shows, what follows the
/// attribute on the code line.
fn test_attribute<'a>(line: &'a str, raw: &str) -> Option<&'a str> {
    let cfg = CFG_TEST
        .iter()
        .find(|cfg| raw.trim_start().starts_with(**cfg))?;
    // The attribute as the code line has it: its string emptied.
    let emptied = code_lines(cfg).concat();
    line.trim().strip_prefix(emptied.as_str())
}

/// The lines of code in one file's text (Rust or assembly).
pub(crate) fn count(text: &str) -> u64 {
    let mut total = 0;
    // Inside a test item: its depth in braces, in brackets and parentheses,
    // and whether its body (or its `;`) came.
    let mut skipping: Option<(i64, i64, bool)> = None;
    for (line, raw) in code_lines(text).iter().zip(text.split('\n')) {
        let trimmed = line.trim();
        let attribute = test_attribute(line, raw);
        if skipping.is_none() && attribute.is_some() {
            skipping = Some((0, 0, false));
        }
        let Some((depth, nested, opened)) = skipping.as_mut() else {
            total += u64::from(!trimmed.is_empty());
            continue;
        };
        // Only what follows the attribute belongs to its item.
        let text = attribute.unwrap_or(trimmed);
        for c in text.chars() {
            match c {
                '{' => {
                    *depth += 1;
                    *opened = true;
                }
                '}' => *depth -= 1,
                '(' | '[' => *nested += 1,
                ')' | ']' => *nested -= 1,
                // Not the `;` of an array type in a signature.
                ';' if !*opened && *depth == 0 && *nested == 0 => *opened = true,
                _ => {}
            }
        }
        if *opened && *depth <= 0 {
            skipping = None;
        }
    }
    total
}

/// `text`'s lines with comments removed and the insides of string and
/// character literals emptied (`"..."` becomes `""`, `'{'` becomes `''`), so
/// that what is left is code whose braces can be counted.
pub(crate) fn code_lines(text: &str) -> Vec<String> {
    #[derive(PartialEq)]
    enum State {
        Code,
        /// Inside `"..."`.
        Str,
        /// Inside a raw string closed by `"` and this many `#`.
        Raw(usize),
        /// Inside `/* */`, this deep.
        Block(usize),
    }
    let chars: Vec<char> = text.chars().collect();
    let mut lines = vec![String::new()];
    let mut state = State::Code;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let line = lines.last_mut().expect("there is always a line");
        if c == '\n' {
            lines.push(String::new());
            i += 1;
            continue;
        }
        match state {
            State::Code => {
                if c == '/' && next == Some('/') {
                    // To the end of the line.
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    continue;
                }
                if c == '/' && next == Some('*') {
                    state = State::Block(1);
                    i += 2;
                    continue;
                }
                if c == '"' {
                    line.push('"');
                    state = State::Str;
                } else if c == 'r'
                    && !chars[..i]
                        .last()
                        .is_some_and(|p| p.is_alphanumeric() || *p == '_')
                    && matches!(next, Some('"' | '#'))
                {
                    let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
                    if chars.get(i + 1 + hashes) == Some(&'"') {
                        line.push_str("r\"");
                        state = State::Raw(hashes);
                        i += 2 + hashes;
                        continue;
                    }
                    line.push(c);
                } else if c == '\'' {
                    // A character literal ('x', '\n', '\u{7f}'), or a
                    // lifetime or label ('a), which stays.
                    let end = if next == Some('\\') {
                        // Past the escaped character, which may be `'`.
                        chars
                            .get(i + 3..)
                            .unwrap_or_default()
                            .iter()
                            .position(|&q| q == '\'' || q == '\n')
                            .map(|p| i + 3 + p)
                            .filter(|&p| chars[p] == '\'')
                    } else if chars.get(i + 2) == Some(&'\'') && next != Some('\n') {
                        Some(i + 2)
                    } else {
                        None
                    };
                    if let Some(end) = end {
                        line.push_str("''");
                        i = end + 1;
                        continue;
                    }
                    line.push(c);
                } else {
                    line.push(c);
                }
            }
            State::Str => {
                if c == '\\' {
                    // An escaped character (a `\` at the end of a line
                    // continues the string on the next).
                    if next != Some('\n') {
                        i += 1;
                    }
                } else if c == '"' {
                    line.push('"');
                    state = State::Code;
                } else if !line.ends_with('"') {
                    // The string goes on from an earlier line: that line
                    // counts as code.
                    line.push('"');
                }
            }
            State::Raw(hashes) => {
                if c == '"' && chars[i + 1..].iter().take_while(|&&h| h == '#').count() >= hashes {
                    line.push('"');
                    state = State::Code;
                    i += 1 + hashes;
                    continue;
                } else if !line.ends_with('"') {
                    line.push('"');
                }
            }
            State::Block(depth) => {
                if c == '*' && next == Some('/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::Block(depth - 1)
                    };
                    i += 2;
                    continue;
                }
                if c == '/' && next == Some('*') {
                    state = State::Block(depth + 1);
                    i += 2;
                    continue;
                }
            }
        }
        i += 1;
    }
    if text.ends_with('\n') {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::{code_lines, count, test_module_declarations};

    #[test]
    fn comments_and_blank_lines_do_not_count() {
        let text = "//! A crate.\n\n/// A function.\nfn f() -> u32 {\n    // a comment\n    1 // one\n}\n   \n/* a\n   block */\nconst A: u8 = /* inline */ 2;\n";
        // fn f, 1, }, const A.
        assert_eq!(count(text), 4);
        assert_eq!(count(""), 0);
        assert_eq!(count("\n\n// only comments\n"), 0);
    }

    #[test]
    fn nested_block_comments_end_where_rust_ends_them() {
        let text = "/* outer /* inner */ still a comment\n*/\nlet a = 1;\n";
        assert_eq!(count(text), 1);
    }

    #[test]
    fn comment_markers_in_literals_are_code() {
        let text = "let url = \"http://example\";\nlet s = \"/* not a comment\";\nlet t = 1;\nlet r = r#\"// \"quoted\" \"#;\nlet c = '/';\n";
        assert_eq!(count(text), 5);
        assert_eq!(
            code_lines("let s = \"a // b\"; // gone"),
            vec!["let s = \"\"; "]
        );
        // A string over several lines: each of its lines is code.
        assert_eq!(count("let s = \"one\n\ntwo\";\n"), 2);
    }

    #[test]
    fn test_modules_and_items_do_not_count() {
        let text = "fn kept() {}\n\n#[cfg(test)]\nmod tests {\n    use super::kept;\n\n    #[test]\n    fn brace_in_a_literal() {\n        let _ = ('{', \"}}\");\n        kept();\n    }\n}\n\nfn also_kept() {}\n#[cfg(test)]\nuse std::vec::Vec;\n#[cfg(test)]\n#[allow(dead_code)]\nfn helper() -> Vec<u8> {\n    Vec::new()\n}\nconst LAST: u8 = 0;\n";
        // kept, also_kept, LAST.
        assert_eq!(count(text), 3);
        // One line: the item is on the attribute's line.
        assert_eq!(count("#[cfg(test)] mod tests;\nfn f() {}\n"), 1);
        assert_eq!(
            count("#[cfg(any(test, feature = \"checks\"))]\nmod checks;\nfn f() {}\n"),
            1
        );
        assert_eq!(
            count("#[cfg(test)] mod tests { fn a() {} }\nfn f() {}\n"),
            1
        );
        // The `;` of an array type is not the end of the item.
        assert_eq!(
            count("#[cfg(test)]\nfn f(x: [u8; 4]) -> u8 {\n    x[0]\n}\nfn g() {}\n"),
            1
        );
        // Not test-only: counts.
        assert_eq!(
            count("#[cfg(any(test, feature = \"std\"))]\nmod build {\n}\n"),
            3
        );
    }

    #[test]
    fn lifetimes_are_not_character_literals() {
        let text =
            "#[cfg(test)]\nmod tests {\n    fn f<'a>(x: &'a str) -> &'a str { x }\n}\nfn g() {}\n";
        assert_eq!(count(text), 1);
        assert_eq!(
            code_lines("'outer: loop { break 'outer; }"),
            vec!["'outer: loop { break 'outer; }"]
        );
        assert_eq!(
            code_lines("let c = '\\''; let d = '\\u{7f}';"),
            vec!["let c = ''; let d = '';"]
        );
    }

    #[test]
    fn assembly_comments_do_not_count() {
        let text = "// SPDX-License-Identifier: MIT\n/*\n * The entry.\n */\n#include \"x.h\"\n\t.global entry\nentry:\n\tmov x0, #1 // one\n\n\tret\n";
        // #include, .global, entry:, mov, ret.
        assert_eq!(count(text), 5);
    }

    #[test]
    fn out_of_line_test_modules_are_found() {
        let text = "mod kept;\n#[cfg(test)]\nmod tests;\n#[cfg(test)] mod fixtures;\n#[cfg(any(test, feature = \"std\"))]\nmod build;\n";
        assert_eq!(test_module_declarations(text), vec!["tests", "fixtures"]);
    }

    #[test]
    fn test_files_are_left_out() {
        let root = std::env::temp_dir().join(format!("xtask-lines-{}", std::process::id()));
        let src = root.join("kernel/core/src");
        std::fs::create_dir_all(src.join("state/tests")).unwrap();
        std::fs::create_dir_all(root.join("kernel/core/tests")).unwrap();
        std::fs::create_dir_all(root.join("platforms/board/src")).unwrap();
        let write = |path: &str, text: &str| std::fs::write(root.join(path), text).unwrap();
        write(
            "kernel/core/src/lib.rs",
            "mod state;\n#[cfg(test)]\nmod fixtures;\n",
        );
        write("kernel/core/src/fixtures.rs", "pub const A: u8 = 1;\n");
        write(
            "kernel/core/src/state.rs",
            "pub fn f() {}\n#[cfg(test)]\nmod tests;\n",
        );
        write("kernel/core/src/state/tests.rs", "mod vm;\n");
        write("kernel/core/src/state/tests/vm.rs", "fn t() {}\n");
        write("kernel/core/tests/integration.rs", "fn t() {}\n");
        write("platforms/board/src/boot.S", "// entry\n\tret\n");
        write("platforms/board/link.x", "SECTIONS {}\n");
        let files: Vec<String> = super::kernel_files(&root)
            .unwrap()
            .iter()
            .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "kernel/core/src/lib.rs",
                "kernel/core/src/state.rs",
                "platforms/board/src/boot.S"
            ]
        );
        // mod state; then pub fn f, then ret.
        assert_eq!(super::count_tree(&root).unwrap(), 3);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
