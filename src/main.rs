//! The `reconwatch` binary: parses the command line, loads configuration,
//! sets up logging and signals, and hands over to [`reconwatch::app`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use reconwatch::config::{Config, EX_USAGE, Mode};
use reconwatch::{app, rules};

/// Detect cloud reconnaissance in AWS CloudTrail as it is delivered to S3.
#[derive(Parser)]
#[command(name = "reconwatch", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults are used.
    #[arg(long, short, global = true, env = "RECONWATCH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon: SQS notifications → S3 objects → alerts.
    Run,
    /// Run the pipeline over local files/directories or s3://bucket/prefix
    /// and print alerts (JSON lines on stdout by default).
    Replay {
        /// Files, directories (recursive) or s3://bucket/prefix.
        #[arg(required = true)]
        sources: Vec<String>,
    },
    /// Validate the configuration and rules; print every problem.
    CheckConfig,
    /// Inspect the loaded rules.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
    /// Per-identity API-call baselines (rule 5).
    Baseline {
        #[command(subcommand)]
        cmd: BaselineCmd,
    },
}

#[derive(Subcommand)]
enum BaselineCmd {
    /// Learn baselines (and new-terms history) from historical logs: files,
    /// directories or s3://bucket/prefix; written to the state store.
    Train {
        /// Files, directories (recursive) or s3://bucket/prefix.
        #[arg(required = true)]
        sources: Vec<String>,
    },
    /// Print the stored baselines.
    Show {
        /// Only this identity.
        #[arg(long)]
        identity: Option<String>,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// List the enabled rules.
    List,
}

fn load(cli: &Cli, mode: Mode) -> Result<Config, ExitCode> {
    Config::load(cli.config.as_deref(), mode).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EX_USAGE as u8)
    })
}

/// Cancel `token` on SIGTERM or SIGINT; a second signal exits at once.
fn install_signals(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "Cannot listen for SIGTERM.");
                    return;
                }
            };
        for n in 0..2 {
            #[cfg(unix)]
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            if n == 0 {
                tracing::info!("Signal received; shutting down gracefully (again to force).");
                token.cancel();
            } else {
                tracing::warn!("Second signal; exiting now.");
                std::process::exit(130);
            }
        }
    });
}

fn print_rules(cfg: &Config) -> anyhow::Result<()> {
    let set = rules::load(&cfg.rules)?;
    println!(
        "{:<28} {:<12} {:<7} {:<9} {:<18} {:<40} group_by",
        "id", "kind", "output", "severity", "window", "condition"
    );
    for r in &set.rules {
        let s = &r.spec;
        let window = s
            .window
            .as_ref()
            .map(|w| format!("{:?} {}s", w.mode, w.size_secs).to_lowercase())
            .unwrap_or_else(|| "-".into());
        let cond = if let Some(t) = &s.threshold {
            let mut parts = Vec::new();
            if let (Some(f), Some(n)) = (t.distinct_field, t.min_distinct) {
                parts.push(format!("distinct({}) >= {n}", f.name()));
            }
            if let Some(n) = t.min_events {
                parts.push(format!("events >= {n}"));
            }
            parts.join(" and ")
        } else if let Some(c) = &s.correlation {
            format!(
                "{} + any of {} in {}s",
                c.require.join("+"),
                c.any_of.len(),
                c.horizon_secs
            )
        } else if let Some(n) = &s.new_terms {
            format!(
                "new {} ({}d){}",
                n.term_field.name(),
                n.history_days,
                n.trigger
                    .as_ref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default()
            )
        } else {
            "every match".into()
        };
        let group: Vec<&str> = s.group_by.iter().map(|f| f.name()).collect();
        println!(
            "{:<28} {:<12} {:<7} {:<9} {:<18} {:<40} {}",
            s.id,
            format!("{:?}", s.kind).to_lowercase(),
            format!("{:?}", s.output).to_lowercase(),
            s.severity.as_str(),
            window,
            cond,
            group.join(",")
        );
    }
    Ok(())
}

/// The async runtime: one thread when the process may use one core (its
/// CPU affinity or cgroup quota), else one worker per core. With one core a
/// work-stealing scheduler has no one to share with, and its cross-thread
/// wake-ups, queue atomics and parking cost about 3 % of a one-core replay.
///
/// With workers, the command runs as a task on them, not on the main
/// thread that `block_on` parks between polls: replay's driver is woken as
/// each object finishes decoding, and on the main thread every such wake-up
/// was a futex call and a thread switch (three in four of a two-core
/// replay's ~3,000 wake-ups).
fn main() -> ExitCode {
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let rt = if one_core {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match rt {
        Ok(rt) if one_core => rt.block_on(run()),
        Ok(rt) => rt.block_on(async {
            match tokio::spawn(run()).await {
                Ok(code) => code,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    let mode = match cli.cmd {
        Cmd::Run => Mode::Daemon,
        _ => Mode::Offline,
    };
    let cfg = match load(&cli, mode) {
        Ok(c) => c,
        Err(code) => return code,
    };
    reconwatch::telemetry::init_tracing(&cfg.telemetry);
    // Rules are part of the configuration: report their problems the same way.
    if let Err(e) = rules::load(&cfg.rules) {
        eprintln!("{e}");
        return ExitCode::from(EX_USAGE as u8);
    }
    let token = CancellationToken::new();
    let result: anyhow::Result<ExitCode> = async {
        match cli.cmd {
            Cmd::CheckConfig => {
                let n = rules::load(&cfg.rules)?.rules.len();
                println!("configuration OK ({n} rules enabled)");
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Rules {
                cmd: RulesCmd::List,
            } => {
                print_rules(&cfg)?;
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Run => {
                install_signals(token.clone());
                app::run_daemon(cfg, token).await.context("daemon failed")?;
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Baseline {
                cmd: BaselineCmd::Train { sources },
            } => {
                install_signals(token.clone());
                let path = cfg.state_path();
                let summary = app::train(cfg, sources, token)
                    .await
                    .context("training failed")?;
                eprint!("{summary}");
                eprintln!("  baselines written to            {}", path.display());
                Ok(if summary.objects_failed > 0 {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                })
            }
            Cmd::Baseline {
                cmd: BaselineCmd::Show { identity },
            } => {
                let rows = app::baseline_report(&cfg).await?;
                println!(
                    "{:<20} {:<60} {:<6} {:>7} {:<7} {:>14} dist",
                    "rule", "identity", "group", "samples", "judged", "threshold"
                );
                for r in rows
                    .iter()
                    .filter(|r| identity.as_ref().is_none_or(|i| *i == r.identity))
                {
                    let (t, d) = r
                        .threshold
                        .map(|(t, d)| (format!("{t}"), format!("{d:?}").to_lowercase()))
                        .unwrap_or_else(|| ("-".into(), "-".into()));
                    println!(
                        "{:<20} {:<60} {:<6} {:>7} {:<7} {:>14} {}",
                        r.rule, r.identity, r.group, r.samples, r.judged, t, d
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Replay { sources } => {
                install_signals(token.clone());
                let summary = app::replay(cfg, sources, token)
                    .await
                    .context("replay failed")?;
                eprint!("{summary}");
                Ok(if summary.objects_failed > 0 {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                })
            }
        }
    }
    .await;
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
