//! `respond mock serve`: validate flags, load the scenario (nothing starts on a bad file),
//! bind (loopback unless `--allow-remote`), print one JSON line with the URL and keys, and
//! serve until SIGINT/SIGTERM.

use std::net::SocketAddr;

use crate::cli::MockServeArgs;
use crate::exit::{Code, Failure};
use crate::mock::{self, MockOptions, Venue};
use crate::output::Printer;

pub async fn serve(args: MockServeArgs, printer: &Printer) -> Result<Code, Failure> {
    let addr: SocketAddr = args.addr.parse().map_err(|e| {
        Failure::usage(format!("--addr {}: {e}", args.addr))
            .with_hint("use IP:PORT, e.g. 127.0.0.1:0 for a free loopback port")
    })?;
    if !addr.ip().is_loopback() && !args.allow_remote {
        return Err(Failure::usage(format!(
            "refusing to bind {addr}: the mock serves test keys and is loopback-only by default"
        ))
        .with_hint("pass --allow-remote to bind a non-loopback address"));
    }
    if ![401, 403].contains(&args.out_of_scope_status) {
        return Err(Failure::usage("--out-of-scope-status must be 401 or 403"));
    }
    let facade = mock::facade(args.exchange.as_str()).ok_or_else(|| {
        Failure::usage(format!("no mock exchange for `{}`", args.exchange.as_str()))
    })?;
    let scenario = mock::scenario::load(&args.scenario, args.seed)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let name = scenario.name.clone();
    let opts = MockOptions {
        drill_api: !args.no_drill_api,
        out_of_scope_status: args.out_of_scope_status,
        ..MockOptions::default()
    };
    let ex =
        Venue::new(facade.as_ref(), scenario, opts).map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(path) = &args.bot_log_out {
        crate::fsutil::write_private(path, ex.bot_log_csv().as_bytes()).map_err(|e| {
            Failure::run(format!(
                "cannot write the bot log to {}: {e}",
                path.display()
            ))
        })?;
    }
    let server = mock::serve(addr, facade, ex.clone())
        .await
        .map_err(|e| Failure::run(format!("cannot bind {addr}: {e}")))?;
    let stop = stop_signal();
    let line = serde_json::json!({
        "url": server.url,
        "exchange": args.exchange.as_str(),
        "scenario": name,
        "keys": ex.keys(),
    });
    if printer.json() {
        printer.summary(&line);
    } else {
        printer.out(&line.to_string());
    }
    printer.status(&format!(
        "mock {} serving scenario `{name}` on {}; Ctrl-C to stop",
        args.exchange.as_str(),
        server.url
    ));
    stop.await;
    printer.status("shutting down");
    server
        .shutdown()
        .await
        .map_err(|e| Failure::run(format!("server error: {e}")))?;
    Ok(Code::Ok)
}

/// Registers SIGINT and SIGTERM handlers now (before the first line is printed, so a
/// supervisor that signals right after reading it is handled) and returns a future that
/// completes on either.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut i), Ok(mut t)) => {
                    tokio::select! {
                        _ = i.recv() => {}
                        _ = t.recv() => {}
                    }
                }
                _ => {
                    tracing::warn!("cannot listen for SIGTERM; stop with Ctrl-C");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
