//! Paths written in the config file (relative to the file's folder) and files that hold a secret.

use std::path::{Path, PathBuf};

use crate::error::Failure;

pub(super) fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

pub(super) fn read_secret_file(path: &Path, setting: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| Failure::Config(format!("{setting}: cannot read {}: {e}", path.display())))
}
