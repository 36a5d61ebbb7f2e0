// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel glue's modules form a tree: `kernel/kern/src/*.rs` may use
//! each other only without a cycle, so each can be read knowing only the
//! ones below it (`boot` at the top; `console` and `irq` at the bottom).
//! Checked by a host test on the real sources.

use std::collections::{BTreeMap, BTreeSet};

/// Each module's name and the other modules its source names
/// (`crate::x`, or `x` inside `use crate::{...}`), comments left out.
pub(crate) fn uses(sources: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<&str> = sources.iter().map(|(n, _)| n.as_str()).collect();
    let mut graph = BTreeMap::new();
    for (name, text) in sources {
        let mut used = BTreeSet::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let group = rest
                    .strip_prefix('{')
                    .map(|g| g.split('}').next().unwrap_or(""));
                let words: Vec<&str> = match group {
                    Some(g) => g.split(',').map(|w| w.trim()).collect(),
                    None => vec![rest],
                };
                for word in words {
                    let ident: String = word
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if ident != *name && names.contains(ident.as_str()) {
                        used.insert(ident);
                    }
                }
            }
        }
        graph.insert(name.clone(), used);
    }
    graph
}

/// A cycle in `graph`, if it has one, as the modules along it.
pub(crate) fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        at: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == at) {
            let mut found = path[start..].to_vec();
            found.push(at.to_owned());
            return Some(found);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_owned());
        for next in graph.get(at).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> (String, String) {
        (name.to_owned(), text.to_owned())
    }

    #[test]
    fn uses_are_read_from_paths_and_groups_but_not_comments() {
        let graph = uses(&[
            source(
                "a",
                "use crate::{b, c::X};\nfn f() { crate::d::g(); }\n// crate::e\n",
            ),
            source("b", "use crate::a::Thing; // crate::c\n"),
            source("c", ""),
            source("d", "crate::nothing::x();"),
            source("e", ""),
        ]);
        let names = |m: &str| graph[m].iter().cloned().collect::<Vec<_>>();
        assert_eq!(names("a"), ["b", "c", "d"]);
        assert_eq!(names("b"), ["a"]);
        assert!(names("d").is_empty());
        assert_eq!(
            cycle(&graph),
            Some(vec!["a".into(), "b".into(), "a".into()])
        );
    }

    #[test]
    fn a_tree_has_no_cycle() {
        let graph = uses(&[
            source("top", "use crate::{mid, low};"),
            source("mid", "crate::low::f();"),
            source("low", ""),
        ]);
        assert_eq!(cycle(&graph), None);
    }

    /// The real kernel glue.
    #[test]
    fn the_kernel_glues_modules_form_a_tree() {
        let dir = crate::root().join("kernel/kern/src");
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                sources.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
        assert!(sources.len() > 5, "no modules in {}", dir.display());
        let graph = uses(&sources);
        assert_eq!(cycle(&graph), None, "kernel/kern's modules: {graph:?}");
    }
}
