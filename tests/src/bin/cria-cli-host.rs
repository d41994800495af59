//! The `cria` command line, built inside the tests package so integration tests can run it
//! (`env!("CARGO_BIN_EXE_cria-cli-host")`): `cargo test` builds only the test package's own
//! binaries, not the `cria` binary of `crates/cria-cli`. Same code, same worker dispatch.

fn main() -> std::process::ExitCode {
    cria_cli::main()
}
