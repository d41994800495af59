//! Names from outside (catalog entries, server file names, user input) become paths only here.
//!
//! Contract: [`file_name`] accepts a single plain path component and nothing else: no separators
//! of any platform, no `.`/`..`, no NUL or control characters, no drive prefixes, bounded length.
//! [`confined_path`] joins such a name onto the library directory and refuses a destination that
//! is a symlink (or a non-file), so a planted link cannot redirect a write outside the library.

use std::path::{Path, PathBuf};

use crate::{ModelsError, Result};

/// Longest accepted name in bytes (common file-system limit).
pub const MAX_NAME_BYTES: usize = 200;

/// Checks that `name` is one safe file-name component and returns it.
pub fn file_name(name: &str) -> Result<&str> {
    let reject = |reason: &'static str| ModelsError::UnsafeName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(reject("the name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(reject("the name is too long"));
    }
    if name == "." || name == ".." {
        return Err(reject("the name refers to a folder"));
    }
    if name.contains('\0') {
        return Err(reject("the name contains a NUL byte"));
    }
    if name.chars().any(char::is_control) {
        return Err(reject("the name contains control characters"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(reject("the name contains a path separator"));
    }
    if name.contains(':') {
        return Err(reject("the name contains a drive or stream separator (:)"));
    }
    if name.starts_with('.') {
        return Err(reject("hidden names (starting with '.') are not allowed"));
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return Err(reject("the name ends with a space or a dot"));
    }
    Ok(name)
}

/// The last component of a URL path or catalog path (`UD-Q4_K_XL/x-00001-of-00002.gguf` gives
/// `x-00001-of-00002.gguf`), validated as a file name. Percent-escapes are not decoded: an
/// encoded separator stays an invalid character rather than becoming a folder.
pub fn last_component(path: &str) -> Result<&str> {
    let last = path.rsplit('/').next().unwrap_or(path);
    if last.contains('%') {
        return Err(ModelsError::UnsafeName {
            name: path.to_owned(),
            reason: "the name contains percent-escapes",
        });
    }
    file_name(last)
}

/// `dir/name` for a validated `name`, refusing an existing symlink or non-file at that path.
pub fn confined_path(dir: &Path, name: &str) -> Result<PathBuf> {
    let name = file_name(name)?;
    let path = dir.join(name);
    refuse_symlink(&path)?;
    Ok(path)
}

/// Errors if `path` exists and is anything but a regular file.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(ModelsError::UnsafeName {
            name: path.display().to_string(),
            reason: "a symbolic link is in the way of the destination",
        }),
        Ok(meta) if !meta.is_file() => Err(ModelsError::UnsafeName {
            name: path.display().to_string(),
            reason: "something other than a file is in the way of the destination",
        }),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(ModelsError::io("checking the destination", path, error)),
    }
}

/// A library id from free text: lowercase ASCII letters, digits, `-`, `_` and `.`, as a file name.
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    let mut slug: String = trimmed.chars().take(MAX_NAME_BYTES - 16).collect();
    if slug.is_empty() {
        slug.push_str("model");
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for name in [
            "Llama-4-Scout-17B-16E-Instruct-UD-IQ1_S.gguf",
            "mmproj-F16.gguf",
            "a b.gguf",
        ] {
            assert_eq!(file_name(name).unwrap(), name);
        }
    }

    #[test]
    fn traversal_and_odd_names_are_refused() {
        let bad = [
            "",
            ".",
            "..",
            "../x.gguf",
            "../../etc/passwd",
            "/etc/passwd",
            "..\\x.gguf",
            "C:\\Windows\\x",
            "C:x",
            "a\0b",
            "a\nb",
            ".hidden",
            "trailing.",
            "trailing ",
            "dir/file.gguf",
        ];
        for name in bad {
            assert!(file_name(name).is_err(), "{name:?} accepted");
        }
        assert!(file_name(&"x".repeat(MAX_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn last_component_takes_the_file_and_refuses_escapes() {
        assert_eq!(
            last_component("UD-Q4_K_XL/a-00001-of-00002.gguf").unwrap(),
            "a-00001-of-00002.gguf"
        );
        assert!(last_component("x/..").is_err());
        assert!(last_component("x/%2e%2e%2fetc").is_err());
        assert!(last_component("x/").is_err());
    }

    #[test]
    fn slug_is_always_a_valid_name() {
        for text in ["Llama 4 Scout!", "../../x", "", "ÄÖÜ", "...", "a/b\\c"] {
            let slug = slug(text);
            assert!(file_name(&slug).is_ok(), "{text:?} -> {slug:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlink_at_destination_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("target"), dir.path().join("m.gguf"))
            .unwrap();
        assert!(confined_path(dir.path(), "m.gguf").is_err());
        assert!(confined_path(dir.path(), "other.gguf").is_ok());
    }
}
