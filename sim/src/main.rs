//! `warden-sim`: the simulator's command line (see `warden_sim::cli`).

fn main() -> std::process::ExitCode {
    warden_sim::cli::main()
}
