//! The `webcall-loadtest` command. The load generator CLI is not written yet; the crate's
//! library (`webcall_loadtest`) is the WCS client webcall's integration tests use.

fn main() {
    eprintln!("usage: webcall-loadtest (not implemented yet; use the webcall_loadtest library)");
    std::process::exit(2);
}
