//! `cargo xtask tidy`: house habits that compilers do not check.
//!
//! Every tracked `.rs` file opens with a `//!` module doc, and every `unsafe` block carries a
//! `// SAFETY:` comment on one of the lines just above it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd::root;

/// What an `unsafe` block looks like, spelled in two pieces so this file does not flag itself.
const UNSAFE_BLOCK: &str = concat!("unsafe", " {");

/// How many lines above an `unsafe {` a `SAFETY:` comment may start.
const SAFETY_WINDOW: usize = 6;

/// Checks every Rust file of the workspace; lists every problem, then fails if there was one.
pub fn run() -> Result<(), String> {
    let mut files = Vec::new();
    collect(&root(), &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).map_err(|err| format!("{}: {err}", file.display()))?;
        let shown = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        problems.extend(check(&shown, &text));
    }
    if problems.is_empty() {
        eprintln!("tidy: {} files clean", files.len());
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("tidy: {problem}");
        }
        Err(format!("tidy found {} problem(s)", problems.len()))
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn check(name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let first = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    if !first.starts_with("//!") {
        problems.push(format!("{name}: does not open with a `//!` module doc"));
    }
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if !code.contains(UNSAFE_BLOCK) {
            continue;
        }
        let from = i.saturating_sub(SAFETY_WINDOW);
        if !lines[from..=i].iter().any(|l| l.contains("SAFETY:")) {
            problems.push(format!(
                "{name}:{}: `unsafe` block without a `// SAFETY:` comment",
                i + 1
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_missing_module_doc_is_found() {
        assert_eq!(check("a.rs", "fn main() {}\n").len(), 1);
        assert!(check("a.rs", "//! Doc.\nfn main() {}\n").is_empty());
    }

    #[test]
    fn an_unsafe_block_needs_a_safety_comment_above_it() {
        // Built at run time so this file itself holds no block for tidy to flag.
        let block = format!("{} {{ g() }}", "unsafe");
        let bad = format!("//! Doc.\nfn f() {{\n    {block}\n}}\n");
        assert_eq!(check("a.rs", &bad).len(), 1);
        let good =
            format!("//! Doc.\nfn f() {{\n    // SAFETY: no preconditions.\n    {block}\n}}\n");
        assert!(check("a.rs", &good).is_empty());
        let in_comment = format!("//! Doc.\n// never write `{block}` here\n");
        assert!(check("a.rs", &in_comment).is_empty());
    }
}
