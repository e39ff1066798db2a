//! Command-line definitions (clap derive) and nothing else: parsing only, no behaviour.
//! Commands turn these raw flags into validated settings in `commands/`.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Incident response for a leaked exchange API key: contain, replace, investigate, document.
#[derive(Debug, Parser)]
#[command(name = "respond", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  the run failed (a step failed, the exchange refused, I/O)
  2  usage error or invalid input (bad playbook, bad CSV, bad flag); for leak, a bot log
     that was left out (containment and the bundle completed without it)
  3  evidence verification failed
  4  drill scored below its thresholds
  130 interrupted by Ctrl-C, 143 by SIGTERM (resume with `respond resume RUN_DIR`)";

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print one machine-readable JSON summary on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// No colours (also set by the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Respond to a leaked key: contain, replace, investigate, document.
    #[command(after_help = "\
Examples:
  UPBIT_ACCESS_KEY=… UPBIT_SECRET_KEY=… respond leak --exchange upbit --since 7d --bot-log bot.csv
  respond leak --exchange upbit --api-url http://127.0.0.1:8080 --credentials creds.env --dry-run
  respond leak --exchange upbit --exchange binance --since 3d     # one incident, both at once
  respond leak --accounts incident.yaml --since 3d                 # accounts from a file
Credentials come from UPBIT_ACCESS_KEY / UPBIT_SECRET_KEY (and optionally
UPBIT_READONLY_ACCESS_KEY / UPBIT_READONLY_SECRET_KEY), a --credentials file readable only by
you, or a no-echo prompt. Never from the command line.")]
    Leak(LeakArgs),
    /// Rehearse a leak end to end against the built-in mock exchange, with a score.
    #[command(after_help = "\
Examples:
  respond drill --exchange upbit
  respond drill --exchange upbit --exchange binance     # coordinated: every exchange at once
  respond drill --exchange upbit --scenario contra --reaction 30 --min-recall 0.95 --json")]
    Drill(DrillArgs),
    /// Run the mock exchange on its own.
    #[command(subcommand)]
    Mock(MockCommand),
    /// Re-run diff, rules, loss and reports offline from a run's saved raw responses.
    #[command(after_help = "\
Examples:
  respond analyze evidence/20261123T052100Z-upbit-abcd...wxyz --bot-log found-later.csv
  respond analyze evidence/20261123T052100Z-upbit-abcd...wxyz --out reanalysis/
A bundle that does not match its seal is refused (exit 3) and left as it is; --out analyzes
a copy in a new bundle that records which files did not match.")]
    Analyze(AnalyzeArgs),
    /// Continue an interrupted run.
    #[command(after_help = "\
Examples:
  respond resume evidence/20261123T052100Z-upbit-abcd...wxyz
  UPBIT_READONLY_ACCESS_KEY=… UPBIT_READONLY_SECRET_KEY=… respond resume RUN_DIR
  respond resume RUN_DIR --replay cancel_orders")]
    Resume(ResumeArgs),
    /// Evidence bundle tools.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Inspect and validate playbooks.
    #[command(subcommand)]
    Playbook(PlaybookCommand),
}

/// An exchange registered in [`crate::exchange::registry`] (`--exchange NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeName(&'static str);

impl ExchangeName {
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// `--exchange` takes any registered name; `--help` lists them.
fn exchange_name() -> impl TypedValueParser<Value = ExchangeName> {
    PossibleValuesParser::new(crate::exchange::registry::names()).map(|s| {
        let name = crate::exchange::registry::get(&s)
            .map(|d| d.name)
            .unwrap_or("unknown");
        ExchangeName(name)
    })
}

/// `mock serve --exchange` takes the name of any mock façade (registered exchanges, and
/// façades whose exchange has no client yet).
fn mock_exchange_name() -> impl TypedValueParser<Value = ExchangeName> {
    PossibleValuesParser::new(crate::mock::facade_names()).map(|s| {
        let name = crate::mock::facade_names()
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(&s))
            .unwrap_or("unknown");
        ExchangeName(name)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BotLogFormatArg {
    Generic,
    Freqtrade,
    Hummingbot,
    #[value(name = "3commas")]
    ThreeCommas,
}

/// Flags shared by commands that talk to an exchange.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Exchange base URL (a mock); plain http only to loopback addresses.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Credentials file (KEY=VALUE lines); refused when group- or world-readable.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

/// Flags shared by commands that import bot logs.
#[derive(Debug, Args, Clone, Default)]
pub struct BotLogArgs {
    /// The bot's own record of its orders (repeatable; format auto-detected).
    #[arg(long = "bot-log", value_name = "FILE")]
    pub bot_logs: Vec<PathBuf>,
    /// Force the bot-log format instead of detecting it.
    #[arg(long, value_enum)]
    pub bot_log_format: Option<BotLogFormatArg>,
    /// Skip malformed bot-log rows (each is listed in the bundle) instead of failing.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Write CSVs with a UTF-8 byte-order mark so Excel shows non-ASCII (e.g. Korean) text correctly.
    #[arg(long)]
    pub excel: bool,
}

#[derive(Debug, Args)]
pub struct LeakArgs {
    /// The exchange (a registered name). Repeat it for one incident across several exchanges
    /// (credentials from each exchange's environment variables or --credentials FILE).
    #[arg(long, value_parser = exchange_name(), required_unless_present = "accounts")]
    pub exchange: Vec<ExchangeName>,
    /// One incident across several accounts: a YAML file listing each account's exchange,
    /// label, credentials source, API URL and bot logs (see README).
    #[arg(long, value_name = "FILE", conflicts_with = "exchange")]
    pub accounts: Option<PathBuf>,
    /// Playbook file (default: the exchange's embedded leak playbook).
    #[arg(long, value_name = "FILE")]
    pub playbook: Option<PathBuf>,
    /// How far back to investigate (e.g. 7d, 36h, 90m; the leak playbook allows 1m to 366d)
    /// [default: the playbook's, 7d].
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// Start of the investigation window (RFC 3339, e.g. 2026-11-20T00:00:00Z).
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// End of the investigation window (RFC 3339).
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Where the exchange keeps history per market (Binance): which markets to read.
    /// `touched` (every market of an asset the account held, deposited, withdrew or traded),
    /// `all` (every listed market: slow, the run prints an estimate), or SYMBOL,SYMBOL…
    /// [default: the playbook's, touched].
    #[arg(long, value_name = "touched|all|LIST")]
    pub symbols: Option<String>,
    #[command(flatten)]
    pub bot_log: BotLogArgs,
    /// Parent directory of the evidence bundle.
    #[arg(long, value_name = "DIR", default_value = "evidence")]
    pub out: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Execute reads; describe writes, cancels and notifications without doing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not wait for confirmations on a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Playbook input, KEY=VALUE (repeatable). An input set by a flag (--since, --from, --to,
    /// --symbols, --excel) cannot also be given here.
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The exchange (a registered name). Repeat it for a coordinated drill: one mock per
    /// exchange, attacked at the same time, one incident folder, a score per exchange and overall.
    #[arg(long, value_parser = exchange_name(), required = true)]
    pub exchange: Vec<ExchangeName>,
    /// Built-in scenario name or a scenario YAML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "pump-and-dump")]
    pub scenario: String,
    /// Playbook file (default: the exchange's embedded leak playbook).
    #[arg(long, value_name = "FILE")]
    pub playbook: Option<PathBuf>,
    /// Parent directory of the evidence bundle.
    #[arg(long, value_name = "DIR", default_value = "evidence")]
    pub out: PathBuf,
    /// Scenario seed (same seed, same scenario).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds the simulated user takes to delete the key in the web console.
    #[arg(long, default_value_t = 5.0)]
    pub reaction: f64,
    /// Exit 4 when detection recall is below this.
    #[arg(long, default_value_t = 0.95)]
    pub min_recall: f64,
    /// Exit 4 when detection precision is below this.
    #[arg(long, default_value_t = 0.95)]
    pub min_precision: f64,
    /// Run without the bot log (heuristics only).
    #[arg(long)]
    pub no_bot_log: bool,
    /// Write CSVs with a UTF-8 byte-order mark (already the default for an exchange whose home
    /// language is not English).
    #[arg(long)]
    pub excel: bool,
}

#[derive(Debug, Subcommand)]
pub enum MockCommand {
    /// Serve the mock exchange over HTTP until SIGINT/SIGTERM.
    #[command(after_help = "\
Examples:
  respond mock serve --exchange upbit --addr 127.0.0.1:0 --scenario blank
The first line on stdout is JSON: the URL, the scenario and its keys.")]
    Serve(MockServeArgs),
}

#[derive(Debug, Args)]
pub struct MockServeArgs {
    /// The exchange whose mock to serve.
    #[arg(long, value_parser = mock_exchange_name())]
    pub exchange: ExchangeName,
    /// Address to bind; loopback only unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: String,
    /// Built-in scenario name or a scenario YAML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "blank")]
    pub scenario: String,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Allow binding a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Disable the drill-only `/_mock/` API.
    #[arg(long)]
    pub no_drill_api: bool,
    /// HTTP status for `out_of_scope` (older docs: 401, current: 403).
    #[arg(long, default_value_t = 403)]
    pub out_of_scope_status: u16,
    /// Write the scenario's generated bot log to this file.
    #[arg(long, value_name = "FILE")]
    pub bot_log_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub bot_log: BotLogArgs,
    /// Analyze a copy: write a new bundle under DIR (RUN_DIR is only read), recording which
    /// of RUN_DIR's files did not match its seal.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    pub run_dir: PathBuf,
    /// Re-run this step even though it may have had an effect (repeatable).
    #[arg(long, value_name = "STEP")]
    pub replay: Vec<String>,
    /// Resume even though the playbook changed since the run started.
    #[arg(long)]
    pub accept_changed_playbook: bool,
    /// The playbook to continue with (default: the copy saved in the run directory).
    #[arg(long, value_name = "FILE")]
    pub playbook: Option<PathBuf>,
    /// Secret playbook inputs again, KEY=VALUE (never stored, so a resume needs them).
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Do not wait for confirmations on a terminal.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Check every hash in SHA256SUMS, the journal's hash chain and every trusted timestamp.
    Verify { run_dir: PathBuf },
    /// Have a time-stamping authority (RFC 3161) sign the sealed manifest's hash: proof that
    /// the evidence existed at that time. The token is kept under timestamps/ and sealed.
    Timestamp {
        run_dir: PathBuf,
        /// The authority's URL (e.g. http://timestamp.digicert.com, https://freetsa.org/tsr).
        #[arg(long, value_name = "URL")]
        tsa: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlaybookCommand {
    /// Validate playbooks; every problem as file:line:column.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the embedded playbooks.
    List,
    /// Print an embedded playbook.
    Show { name: String },
}
