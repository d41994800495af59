//! The `cria` executable; everything lives in the `cria_cli` library (see its docs).

fn main() -> std::process::ExitCode {
    cria_cli::main()
}
