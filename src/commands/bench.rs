//! `kvctl bench`: run a workload against a server and print what it measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::{client_options, CliError};
use crate::bench::{self, Plan, Report};
use crate::cli::{BenchArgs, OutputFormat};
use crate::client::Client;
use crate::output::{emit, emit_line, resolve, table};

/// `kvctl bench`.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    let plan = plan_of(&args)?;
    // Several workers so the generator is not the bottleneck of one core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = rt.block_on(run_with_progress(&plan, args.preload));
    let report = report.map_err(|e| {
        CliError::Client(crate::client::ClientError::Unreachable {
            server: args.server.clone(),
            reason: e.reason,
        })
    })?;
    print(&report, resolve(args.output.output))
}

/// The plan the arguments describe.
fn plan_of(args: &BenchArgs) -> Result<Plan, CliError> {
    // Checks the URL, the token and the CA file as every client command does.
    let options = client_options(&args.connect)?;
    Client::with_options(&args.server, &options)?;
    let uri: hyper::Uri = args.server.parse().expect("checked by Client");
    let host = uri.host().expect("checked by Client");
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = format!("{host}:{port}");
    let tls = if https {
        let config = crate::client::tls_config(options.cacert.as_deref())?;
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|e| CliError::Usage(format!("{host} is not a TLS server name ({e})")))?;
        Some(bench::TlsTarget {
            connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
            server_name,
        })
    } else {
        None
    };
    if !(0.0..=1.0).contains(&args.read_ratio) {
        return Err(CliError::Usage(
            "--read-ratio must be between 0 and 1".into(),
        ));
    }
    let duration = match (args.duration, args.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (duration, _) => duration,
    };
    Ok(Plan {
        authority,
        tls,
        authorization: options.token.as_ref().map(|t| t.header_value()),
        workload: args.workload,
        clients: args.clients,
        duration,
        requests: args.requests,
        keyspace: args.keyspace,
        value_size: args.value_size,
        ttl: args.ttl,
        read_ratio: args.read_ratio,
        batch_size: args.batch_size,
    })
}

/// Preloads if asked, then runs the plan behind progress bars on stderr.
async fn run_with_progress(plan: &Plan, preload: bool) -> Result<Report, bench::ConnectError> {
    if preload {
        let bar = spinner(format!("preloading {} keys", plan.keyspace));
        bench::preload(plan).await?;
        bar.finish_and_clear();
    }
    let done = Arc::new(AtomicU64::new(0));
    let bar = progress(plan);
    let ticker = {
        let (bar, done) = (bar.clone(), done.clone());
        let started = std::time::Instant::now();
        let by_time = plan.requests.is_none();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if by_time {
                    bar.set_position(started.elapsed().as_millis() as u64);
                } else {
                    bar.set_position(done.load(Ordering::Relaxed));
                }
                bar.set_message(format!("{} requests", done.load(Ordering::Relaxed)));
            }
        })
    };
    let report = bench::run(plan, done).await;
    ticker.abort();
    bar.finish_and_clear();
    report
}

fn spinner(message: String) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn progress(plan: &Plan) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let (len, template) = match (plan.requests, plan.duration) {
        (Some(n), _) => (n, "{bar:40} {pos}/{len} requests {per_sec} ({eta})"),
        (None, Some(d)) => (d.as_millis() as u64, "{bar:40} {elapsed}/{duration} {msg}"),
        (None, None) => (0, "{msg}"),
    };
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(template).expect("static template is valid"));
    bar
}

fn print(report: &Report, format: OutputFormat) -> Result<(), CliError> {
    let l = &report.latency_us;
    match format {
        OutputFormat::Json => emit_line(&serde_json::to_string(report).expect("report serialises"))?,
        OutputFormat::Plain => emit(&format!(
            "workload\t{:?}\nclients\t{}\nrequests\t{}\nseconds\t{:.3}\nrequests_per_sec\t{:.0}\nkeys_per_sec\t{:.0}\nmean_us\t{:.0}\np50_us\t{}\np90_us\t{}\np99_us\t{}\np999_us\t{}\nmax_us\t{}\nnot_found\t{}\nerrors\t{}\n",
            report.workload, report.clients, report.requests, report.seconds, report.requests_per_sec,
            report.keys_per_sec, l.mean, l.p50, l.p90, l.p99, l.p999, l.max, report.not_found,
            report.errors.values().sum::<u64>()
        ))?,
        OutputFormat::Table => {
            let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
            let mut t = table(["workload", "clients", "requests/s", "keys/s", "mean", "p50", "p90", "p99", "p99.9", "max"]);
            t.add_row([
                format!("{:?}", report.workload).to_lowercase(),
                report.clients.to_string(),
                format!("{:.0}", report.requests_per_sec),
                format!("{:.0}", report.keys_per_sec),
                format!("{:.3} ms", l.mean / 1000.0),
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
            ]);
            let mut text = format!("{t}\n{} requests in {:.2} s", report.requests, report.seconds);
            if report.not_found > 0 {
                text.push_str(&format!(", {} answered 404", report.not_found));
            }
            if report.errors.is_empty() {
                text.push_str(", no errors");
            } else {
                let mut errors = table(["error", "count"]);
                for (kind, n) in &report.errors {
                    errors.add_row([kind.clone(), n.to_string()]);
                }
                text.push_str(&format!("\n{errors}"));
            }
            emit_line(&text)?;
        }
    }
    Ok(())
}
