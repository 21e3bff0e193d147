//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Passive monitor that names what a tethered phone talks to, and why.
#[derive(Debug, Parser)]
#[command(name = "tetherscope", version, about)]
pub struct Cli {
    /// More logging (-v info, -vv debug); TETHERSCOPE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a capture file (pcap, pcapng, optionally gzip) and list its flows.
    Read(ReadArgs),
}

/// Output formats of `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (default on a terminal).
    Table,
    /// One JSON object per flow (default when piped).
    Jsonl,
}

/// Arguments of `read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The capture file.
    pub capture: PathBuf,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Most flows tracked at once; the least recently active are evicted.
    #[arg(long, default_value_t = 262_144)]
    pub max_flows: usize,
    /// No summary or progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}
