//! `tetherscope catalog ...` and loading catalogs for the other commands.

use std::io::Write;
use std::process::ExitCode;

use tetherscope_classify::{Catalog, FlowFacts, Purpose, RuleOrigin, Transport};

use crate::cli::{CatalogArgs, CatalogCommand};
use crate::UsageError;

/// The built-in catalog plus the user's files, with the chosen profile.
pub fn load(args: &CatalogArgs) -> anyhow::Result<Catalog> {
    let mut catalog = Catalog::builtin();
    if !args.no_default_lists {
        // A damaged or unreadable system list costs its entries, not the run.
        for (path, result) in catalog.load_default_lists() {
            match result {
                Ok(stats) => tracing::debug!(
                    domains = stats.domains,
                    skipped = stats.skipped,
                    "default list loaded from {}",
                    path.display()
                ),
                Err(e) => tracing::warn!("default list not loaded: {e}"),
            }
        }
    }
    for file in &args.files {
        for stats in catalog
            .load_file(file)
            .map_err(|e| UsageError(e.to_string()))?
        {
            tracing::info!(
                domains = stats.domains,
                skipped = stats.skipped,
                "list imported from {}",
                file.display()
            );
        }
    }
    catalog.set_profile(&args.profile).map_err(|e| {
        let known: Vec<_> = catalog.profiles().iter().map(|p| p.name.clone()).collect();
        UsageError(format!("{e} (known: {})", known.join(", ")))
    })?;
    Ok(catalog)
}

pub fn run(cmd: &CatalogCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CatalogCommand::List(args) => list(&load(args)?),
        CatalogCommand::Explain {
            name,
            port,
            path,
            catalog,
        } => explain(&load(catalog)?, name, *port, path.as_deref()),
        CatalogCommand::Check { files } => check(files),
    }
}

fn origin(o: &RuleOrigin) -> String {
    match o {
        RuleOrigin::Builtin => "built-in".into(),
        RuleOrigin::User(p) => p.display().to_string(),
        RuleOrigin::List(p) => format!("list {}", p.display()),
    }
}

fn list(catalog: &Catalog) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "Purposes:")?;
    for p in Purpose::ALL {
        writeln!(out, "  {:<20} {}", p.as_str(), p.description())?;
    }
    writeln!(
        out,
        "\nRules (expected under profile {:?} marked *):",
        catalog.profile().name
    )?;
    for r in catalog.rules() {
        let expected = catalog.profile().expect_rules.contains(&r.name)
            || catalog.profile().expect_purposes.contains(&r.purpose);
        let domains = if r.domains.is_empty() {
            "(flow rule)".to_owned()
        } else {
            r.domains.join(" ")
        };
        writeln!(
            out,
            "{} {:<32} {:<20} {:<18} {}",
            if expected { "*" } else { " " },
            r.name,
            r.purpose.as_str(),
            r.owner,
            domains
        )?;
    }
    writeln!(out, "\nLists (a catalog rule beats a list entry):")?;
    if catalog.lists().is_empty() {
        writeln!(out, "  none loaded")?;
    }
    for l in catalog.lists() {
        writeln!(
            out,
            "  {:<20} {:<12} {} domains, {} dated {}{}",
            l.title,
            l.purpose.as_str(),
            l.stats.domains,
            l.path.display(),
            l.date.as_deref().unwrap_or("unknown"),
            if l.default { " (default)" } else { "" }
        )?;
    }
    writeln!(out, "\nProfiles:")?;
    for p in catalog.profiles() {
        writeln!(out, "  {:<16} {}", p.name, p.description)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(
    catalog: &Catalog,
    name: &str,
    port: Option<u16>,
    path: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let names = [name];
    let facts = FlowFacts {
        transport: Transport::Tcp,
        server_port: port,
        server_is_local: false,
        app: None,
        names: &names,
        http_path: path,
    };
    let c = catalog.classify(&facts);
    writeln!(out, "name:     {name}")?;
    writeln!(out, "purpose:  {}", c.purpose)?;
    writeln!(
        out,
        "verdict:  {} (profile {})",
        c.verdict.as_str(),
        catalog.profile().name
    )?;
    writeln!(out, "site:     {}", c.site)?;
    match c.rule {
        Some(r) => {
            writeln!(out, "rule:     {} ({})", r.name, origin(&r.origin))?;
            writeln!(out, "owner:    {}", r.owner)?;
            writeln!(out, "patterns: {}", r.domains.join(" "))?;
            writeln!(out, "why:      {}", r.description)?;
            writeln!(out, "source:   {}", r.source)?;
            if r.cleartext_known {
                writeln!(out, "note:     cleartext to this destination is documented")?;
            }
        }
        None => writeln!(out, "rule:     none matched")?,
    }
    Ok(ExitCode::SUCCESS)
}

fn check(files: &[std::path::PathBuf]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut catalog = Catalog::builtin();
    for f in files {
        let stats = catalog
            .load_file(f)
            .map_err(|e| UsageError(e.to_string()))?;
        let listed: usize = stats.iter().map(|s| s.domains).sum();
        writeln!(
            out,
            "{}: ok ({} rules in catalog, {listed} list domains)",
            f.display(),
            catalog.rules().len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
