//! tetherscope: what is my phone talking to, why, is it encrypted, and did I
//! expect it?
//!
//! The binary is glue: it parses the command line, wires capture → flow →
//! classify → export together, and turns errors into one clear sentence.

// Two system calls without a safe wrapper (getrlimit, setns) are allowed
// where they are.
#![deny(unsafe_code)]

mod baseline;
mod catalog;
mod cli;
mod demo;
mod flow_log;
mod history;
mod hotspot;
mod monitor;
mod network_db;
mod offline;
mod open;
mod privileges;
mod read;
mod relay;
mod replay;
mod report;
mod run;
mod settings;
mod start;
mod state;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for a bad command line or configuration (sysexits EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit code for an input that is not a capture, or cannot be read.
pub const EXIT_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        cli::Command::Read(args) => read::run(&args),
        cli::Command::Report(args) => report::run(&args),
        cli::Command::Catalog(cmd) => catalog::run(&cmd),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Replay(args) => replay::run(args),
        cli::Command::Demo(args) => demo::run(&args),
        cli::Command::Baseline(cmd) => baseline::run(&cmd),
        cli::Command::Open(args) => open::run(&args),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`read x.pcap | head -1`): what it wanted was
        // written, so like other Unix filters end quietly and successfully.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tetherscope: {}", one_line(&err));
            ExitCode::from(
                err.downcast_ref::<UsageError>()
                    .map_or(EXIT_INPUT, |_| EXIT_USAGE),
            )
        }
    }
}

/// An error in what the user asked for (exit code 64).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Whether writing to stdout failed because its reader closed the pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let kind = e
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            // serde_json keeps the I/O error inside its own.
            .or_else(|| e.downcast_ref::<serde_json::Error>()?.io_error_kind());
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Joins an error chain into one sentence.
fn one_line(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TETHERSCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
