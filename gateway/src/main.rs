//! The `menshen` binary: parse the command line and hand over to the library.

use mimalloc::MiMalloc;

/// mimalloc measurably lowers the per-request cost of the proxy path (allocation is visible
/// in the profile), so the binary uses it for everything.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    menshen::cli::main()
}
