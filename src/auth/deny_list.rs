//! Revoked tokens: [`DenyList`] holds the `jti` of each revoked token until that token
//! expires, and keeps them in a file so that a restart does not bring them back to life.
//!
//! Owned by the control thread (the REST revoke call writes, each `connection` reads).
//! Invariants: an entry is live while its token could still pass the `exp` check
//! (`now <= exp + LEEWAY_SECS`), and [`DenyList::is_denied`] answers the same whether or not
//! dead entries were pruned yet; at most [`DENY_LIST_ENTRIES_MAX`] entries; the file is always
//! a complete list (written to a temporary file in the same directory, fsynced, renamed), one
//! `jti<TAB>exp` per line.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::jwt::{valid_jti, LEEWAY_SECS};
use super::key_file::AuthSetupError;

/// The most revoked tokens held. Revocation is for the few tokens that leaked, and each entry
/// lives only until its token expires; 100 000 entries (about 15 MB of file at the longest
/// `jti`) bounds memory and the file rewritten on each revoke even if revoking is scripted.
pub const DENY_LIST_ENTRIES_MAX: usize = 100_000;

/// Revoked `jti`s with their tokens' `exp`.
#[derive(Debug)]
pub struct DenyList {
    path: PathBuf,
    entries: HashMap<String, u64>,
}

impl DenyList {
    /// Loads the list in `path`; a missing file is an empty list. Lines that do not parse are
    /// skipped with a warning (the rest is kept: losing revocations is worse than ignoring a
    /// damaged line).
    pub fn open(path: PathBuf) -> Result<Self, AuthSetupError> {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(AuthSetupError::DenyList { path, source }),
        };
        let mut entries = HashMap::new();
        let mut bad_lines = 0_usize;
        let mut first_bad_line = None;
        for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Some((jti, exp)) => {
                    let kept = entries.entry(jti.to_owned()).or_insert(exp);
                    *kept = (*kept).max(exp);
                }
                None => {
                    bad_lines = bad_lines.saturating_add(1);
                    first_bad_line.get_or_insert(index.saturating_add(1));
                }
            }
        }
        if let Some(line) = first_bad_line {
            tracing::warn!(
                "deny list {}: skipped {bad_lines} unreadable line(s), the first at line {line}",
                path.display()
            );
        }
        let mut list = DenyList { path, entries };
        list.enforce_cap(None);
        Ok(list)
    }

    /// Revokes `jti` (a token expiring at `expires_unix`) and rewrites the file, dropping
    /// entries that died. The revocation holds in memory even when writing fails (the error
    /// is returned so the caller can say it was not saved). A `jti` with control characters
    /// (which no verified token has) is refused with `InvalidInput`.
    pub fn deny(&mut self, jti: &str, expires_unix: u64, now_unix: u64) -> std::io::Result<()> {
        if !valid_jti(jti) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "a jti must be 1 to 128 bytes without control characters",
            ));
        }
        if is_live(expires_unix, now_unix) {
            let kept = self.entries.entry(jti.to_owned()).or_insert(expires_unix);
            *kept = (*kept).max(expires_unix);
        }
        self.entries.retain(|_, exp| is_live(*exp, now_unix));
        self.enforce_cap(Some(jti));
        self.save()
    }

    /// Whether `jti` is revoked (and its token not yet past `exp`) at `now_unix`.
    pub fn is_denied(&self, jti: &str, now_unix: u64) -> bool {
        self.entries.get(jti).is_some_and(|exp| is_live(*exp, now_unix))
    }

    /// Entries held, dead ones not yet pruned included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Past [`DENY_LIST_ENTRIES_MAX`], drops the entries expiring soonest (never `keep`, the
    /// one just revoked).
    fn enforce_cap(&mut self, keep: Option<&str>) {
        let Some(excess) = self
            .entries
            .len()
            .checked_sub(DENY_LIST_ENTRIES_MAX)
            .filter(|n| *n > 0)
        else {
            return;
        };
        let mut by_expiry: Vec<(u64, String)> = self
            .entries
            .iter()
            .filter(|(jti, _)| Some(jti.as_str()) != keep)
            .map(|(jti, exp)| (*exp, jti.clone()))
            .collect();
        by_expiry.sort_unstable();
        for (_, jti) in by_expiry.into_iter().take(excess) {
            self.entries.remove(&jti);
        }
        tracing::warn!(
            "deny list {}: over {DENY_LIST_ENTRIES_MAX} entries, dropped the {excess} expiring soonest",
            self.path.display()
        );
    }

    /// Writes the whole list: a temporary file beside it, fsynced, renamed over it, then the
    /// directory fsynced so the rename survives a crash.
    fn save(&self) -> std::io::Result<()> {
        let mut sorted: Vec<(&String, &u64)> = self.entries.iter().collect();
        sorted.sort_unstable();
        let mut text = String::new();
        for (jti, exp) in sorted {
            text.push_str(jti);
            text.push('\t');
            text.push_str(&exp.to_string());
            text.push('\n');
        }
        let file_name = self.path.file_name().ok_or_else(|| {
            std::io::Error::new(ErrorKind::InvalidInput, "the deny list path has no file name")
        })?;
        let mut temp_name = file_name.to_owned();
        temp_name.push(".tmp");
        let temp = self.path.with_file_name(temp_name);
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &self.path)?;
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()
    }
}

/// Whether a token expiring at `exp` could still be accepted at `now_unix`.
fn is_live(exp: u64, now_unix: u64) -> bool {
    now_unix <= exp.saturating_add(LEEWAY_SECS)
}

/// `jti<TAB>exp`, with a trailing `\r` tolerated (a file edited on Windows).
fn parse_line(line: &[u8]) -> Option<(&str, u64)> {
    let line = std::str::from_utf8(line).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (jti, exp) = line.split_once('\t')?;
    let exp = exp.parse().ok()?;
    valid_jti(jti).then_some((jti, exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_keys::TempDir;

    const NOW: u64 = 1_000_000;

    #[test]
    fn revocations_survive_reopening() {
        let dir = TempDir::new();
        let path = dir.path().join("deny.txt");
        let mut list = DenyList::open(path.clone()).expect("missing file is empty");
        assert!(list.is_empty());
        list.deny("jti-1", NOW + 100, NOW).expect("deny");
        list.deny("jti-2", NOW + 200, NOW).expect("deny");
        assert!(list.is_denied("jti-1", NOW));
        assert!(!list.is_denied("jti-3", NOW));
        let reopened = DenyList::open(path.clone()).expect("reopen");
        assert_eq!(reopened.len(), 2);
        assert!(reopened.is_denied("jti-1", NOW) && reopened.is_denied("jti-2", NOW));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("jti-1\t{}\njti-2\t{}\n", NOW + 100, NOW + 200));
        assert!(!dir.path().join("deny.txt.tmp").exists());
    }

    #[test]
    fn expired_entries_stop_counting_and_are_pruned_on_write() {
        let dir = TempDir::new();
        let mut list = DenyList::open(dir.path().join("deny")).expect("open");
        list.deny("old", NOW + 10, NOW).expect("deny");
        // Still denied within the leeway a verifier grants after `exp`.
        assert!(list.is_denied("old", NOW + 10 + LEEWAY_SECS));
        assert!(!list.is_denied("old", NOW + 11 + LEEWAY_SECS));
        list.deny("new", NOW + 1000, NOW + 100).expect("deny");
        assert_eq!(list.len(), 1);
        // Revoking an already dead token records nothing.
        list.deny("dead", NOW, NOW + 100).expect("deny");
        assert_eq!(list.len(), 1);
        assert_eq!(
            DenyList::open(dir.path().join("deny")).map(|l| l.len()).ok(),
            Some(1)
        );
    }

    #[test]
    fn damaged_lines_are_skipped_and_the_rest_kept() {
        let dir = TempDir::new();
        let path = dir.write(
            "deny",
            b"good\t2000000\nno-tab\nbad\tnumber\n\n\xff\t1\nwin\t2000000\r\nx\t1\ty\n",
        );
        let list = DenyList::open(path).expect("open");
        assert_eq!(list.len(), 2);
        assert!(list.is_denied("good", NOW) && list.is_denied("win", NOW));
    }

    #[test]
    fn control_characters_are_refused() {
        let dir = TempDir::new();
        let mut list = DenyList::open(dir.path().join("deny")).expect("open");
        for jti in ["a\tb", "a\nb", "a\u{7}b", "", &"j".repeat(129)] {
            let error = list.deny(jti, NOW + 10, NOW).err().map(|e| e.kind());
            assert_eq!(error, Some(ErrorKind::InvalidInput), "{jti:?}");
        }
        assert!(list.is_empty());
    }

    #[test]
    fn past_the_cap_the_soonest_expiring_go_first() {
        let dir = TempDir::new();
        // Write a full file directly (one entry per second of expiry), then revoke one more.
        let mut text = String::new();
        for i in 0..DENY_LIST_ENTRIES_MAX as u64 {
            text.push_str(&format!("j{i}\t{}\n", NOW + 1000 + i));
        }
        let path = dir.write("deny", text.as_bytes());
        let mut list = DenyList::open(path.clone()).expect("open");
        assert_eq!(list.len(), DENY_LIST_ENTRIES_MAX);
        // The newcomer expires soonest of all and is still kept.
        list.deny("newest", NOW + 500, NOW).expect("deny");
        assert_eq!(list.len(), DENY_LIST_ENTRIES_MAX);
        assert!(list.is_denied("newest", NOW));
        assert!(!list.is_denied("j0", NOW));
        assert!(list.is_denied("j1", NOW));
        // Loading an over-full file caps it too.
        text.push_str(&format!("extra\t{}\n", NOW + 999_999));
        let path = dir.write("deny2", text.as_bytes());
        let list = DenyList::open(path).expect("open");
        assert_eq!(list.len(), DENY_LIST_ENTRIES_MAX);
        assert!(!list.is_denied("j0", NOW) && list.is_denied("extra", NOW));
    }
}
