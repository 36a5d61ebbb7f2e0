// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The command line, read with `lexopt`: each subcommand's module has a
//! `parse` function from its arguments to its options, a pure function that
//! the module's tests call with lists of strings, and nothing runs until the
//! whole command line has been read ([`crate::Command::parse`]).
//!
//! `lexopt` gives the tokens (`--board rpi4`, `--board=rpi4`, `-o FILE`,
//! `-oFILE`, `--` and positional arguments); this module adds what every
//! subcommand shares: a value that looks like an option is refused rather
//! than taken (`-o --force` is a forgotten file name, not a file called
//! `--force`), and every error names the subcommand and the argument.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

pub(crate) use lexopt::Arg::{Long, Short, Value};
pub(crate) use lexopt::{Error as ArgError, Parser};

use crate::{Error, error};

/// What a `parse` function returns before [`explain`] names its subcommand.
pub(crate) type Parsed<T> = std::result::Result<T, ArgError>;

/// A parser over a subcommand's arguments (without the command's own name).
pub(crate) fn parser<A: AsRef<OsStr>>(args: &[A]) -> Parser {
    Parser::from_args(args.iter().map(|a| a.as_ref().to_owned()))
}

/// The value of `option`, just read: attached to it (`--board=rpi4`,
/// `-oFILE`) or the next argument, which must not itself be an option.
pub(crate) fn value(parser: &mut Parser, option: &str) -> Parsed<OsString> {
    if let Some(attached) = parser.optional_value() {
        return Ok(attached);
    }
    let looks_like_option = parser
        .try_raw_args()
        .and_then(|raw| raw.peek().map(looks_like_option))
        .unwrap_or(false);
    if looks_like_option {
        return Err(ArgError::MissingValue {
            option: Some(option.to_owned()),
        });
    }
    parser.value()
}

/// [`value`] as text.
pub(crate) fn string(parser: &mut Parser, option: &str) -> Parsed<String> {
    value(parser, option)?
        .into_string()
        .map_err(ArgError::NonUnicodeValue)
}

/// [`value`] as a path.
pub(crate) fn path(parser: &mut Parser, option: &str) -> Parsed<PathBuf> {
    value(parser, option).map(PathBuf::from)
}

/// A positional argument as text.
pub(crate) fn text(value: OsString) -> Parsed<String> {
    value.into_string().map_err(ArgError::NonUnicodeValue)
}

/// Whether the next argument is `--`; if so, it is consumed and the
/// arguments after it are returned as they are (QEMU's, for `run`).
pub(crate) fn after_dashes(parser: &mut Parser) -> Option<Vec<OsString>> {
    let mut raw = parser.try_raw_args()?;
    if raw.peek() != Some(OsStr::new("--")) {
        return None;
    }
    raw.next();
    Some(raw.collect())
}

/// An option (`-x`, `--xy`), not a value (`-` alone is one: standard input).
fn looks_like_option(arg: &OsStr) -> bool {
    let bytes = arg.as_encoded_bytes();
    bytes.len() > 1 && bytes[0] == b'-'
}

/// Takes `value` as the one system manifest a command names: `system`
/// becomes it, or a second one is refused.
pub(crate) fn manifest(system: &mut PathBuf, given: &mut bool, value: OsString) -> Parsed<()> {
    if *given {
        return Err(bad(format!(
            "takes one system manifest, not both `{}` and `{}`",
            system.display(),
            value.to_string_lossy()
        )));
    }
    *system = PathBuf::from(value);
    *given = true;
    Ok(())
}

/// A custom error for a `parse` function.
pub(crate) fn bad(message: impl Into<String>) -> ArgError {
    ArgError::Custom(message.into().into())
}

/// Turns `lexopt`'s error into one that names `cargo xtask COMMAND` and the
/// argument at fault.
pub(crate) fn explain(command: &str, e: ArgError) -> Error {
    let lossy = |v: &OsStr| v.to_string_lossy().into_owned();
    let (what, hint) = match e {
        ArgError::MissingValue { option: Some(o) } => (format!("{o} needs a value"), true),
        ArgError::MissingValue { option: None } => ("an option needs a value".into(), true),
        ArgError::UnexpectedOption(o) => (format!("unknown option `{o}`"), true),
        ArgError::UnexpectedArgument(v) => (format!("unexpected argument `{}`", lossy(&v)), true),
        ArgError::UnexpectedValue { option, value } => (
            format!("{option} takes no value, not `{}`", lossy(&value)),
            true,
        ),
        ArgError::ParsingFailed { value, error } => (format!("`{value}`: {error}"), false),
        ArgError::NonUnicodeValue(v) => (format!("`{}` is not UTF-8 text", lossy(&v)), false),
        ArgError::Custom(e) => (e.to_string(), false),
    };
    let hint = if hint { "; try `cargo xtask help`" } else { "" };
    error!("cargo xtask {command}: {what}{hint}")
}

/// Runs `parse` over `args` and names `command` in its error.
pub(crate) fn parse_for<A: AsRef<OsStr>, T>(
    command: &str,
    args: &[A],
    parse: impl FnOnce(&mut Parser) -> Parsed<T>,
) -> crate::Result<T> {
    parse(&mut parser(args)).map_err(|e| explain(command, e))
}

/// The arguments of a command that takes none.
pub(crate) fn none<A: AsRef<OsStr>>(command: &str, args: &[A]) -> crate::Result<()> {
    parse_for(command, args, |parser| match parser.next()? {
        Some(arg) => Err(arg.unexpected()),
        None => Ok(()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{Long, Value, parser};

    /// The error `parse` gives for `args`, as shown.
    pub(crate) fn error_of<T: std::fmt::Debug>(result: crate::Result<T>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn values_that_look_like_options_are_refused() {
        let mut p = parser(&["--kernel", "--debug"]);
        assert!(matches!(p.next().unwrap(), Some(Long("kernel"))));
        let e = super::value(&mut p, "--kernel").unwrap_err();
        assert_eq!(
            super::explain("build", e).to_string(),
            "cargo xtask build: --kernel needs a value; try `cargo xtask help`"
        );
        let mut p = parser(&["--kernel=--odd", "-o", "-", "-ofile"]);
        p.next().unwrap();
        assert_eq!(super::string(&mut p, "--kernel").unwrap(), "--odd");
        p.next().unwrap();
        assert_eq!(super::string(&mut p, "-o").unwrap(), "-");
        p.next().unwrap();
        assert_eq!(super::string(&mut p, "-o").unwrap(), "file");
    }

    #[test]
    fn dashes_end_the_options() {
        let mut p = parser(&["a.toml", "--", "-S", "--", "x"]);
        assert!(super::after_dashes(&mut p).is_none());
        assert!(matches!(p.next().unwrap(), Some(Value(_))));
        let rest = super::after_dashes(&mut p).unwrap();
        assert_eq!(rest, ["-S", "--", "x"]);
    }

    #[test]
    fn commands_without_arguments() {
        assert!(super::none::<&str>("setup", &[]).is_ok());
        assert_eq!(
            error_of(super::none("setup", &["x"])),
            "cargo xtask setup: unexpected argument `x`; try `cargo xtask help`"
        );
        assert_eq!(
            error_of(super::none("setup", &["--yes"])),
            "cargo xtask setup: unknown option `--yes`; try `cargo xtask help`"
        );
    }
}
