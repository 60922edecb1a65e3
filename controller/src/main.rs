//! The `wanmon` command: the daemon (`run`), its control commands, and config checking.

#![no_main]

use std::ffi::{CStr, c_char, c_int};
use std::path::PathBuf;
use wanmon::daemon::run;
use wanmon::daemon::system::{name_process, start_up, write_out};
use wanmon::protocol::{self, Request};
use wanmon::text;

const USAGE: &str = "usage:
  wanmon run --config FILE [--socket PATH]   run the daemon in the foreground
  wanmon status [--json] [--socket PATH]     links, scores, route and recent decisions
  wanmon force [--] LINK [--socket PATH]     put the route on LINK until `wanmon auto`
  wanmon auto [--socket PATH]                let wanmon choose again
  wanmon reload [--socket PATH]              read the config file again (as SIGHUP)
  wanmon check-config FILE                   validate a config file, print every mistake
  wanmon --version";

/// The C entry point, in place of std's: std's start-up (a stack-overflow handler, a record of
/// the main thread, args kept for `std::env::args`) costs ~3 KB of flash the router has not got
/// to spare. What of it the daemon needs is [`start_up`].
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    start_up(envp);
    // SAFETY: the C library passes argc valid NUL-terminated strings in argv.
    let words: Vec<&[u8]> = (0..argc.max(0) as usize)
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes())
        .collect();
    if let Some(command) = words.first() {
        name_process(command);
    }
    let mut args = Vec::with_capacity(words.len());
    let mut not_text = None;
    for (i, word) in words.iter().enumerate().skip(1) {
        match wanmon::text::utf8(word) {
            Some(arg) => args.push(arg.to_string()),
            None => {
                not_text = Some(Failure::Usage(text!("argument ", i, " is not UTF-8 text")));
                break;
            }
        }
    }
    match not_text.map_or_else(|| dispatch(&args), Err) {
        Ok(()) => 0,
        Err(Failure::Usage(message)) => {
            write_out(2, &text!("wanmon: ", message, "\n", USAGE, "\n"));
            2
        }
        Err(Failure::Failed(message)) => {
            write_out(2, &text!(message, "\n"));
            1
        }
    }
}

enum Failure {
    Usage(String),
    Failed(String),
}

/// Splits `--socket PATH` (and flags) from the positional words; every word after `--` is
/// positional (a link may be named `--x`).
struct Words {
    positional: Vec<String>,
    socket: PathBuf,
    config: Option<PathBuf>,
    json: bool,
}

fn words(args: &[String]) -> Result<Words, Failure> {
    let mut parsed = Words {
        positional: Vec::new(),
        socket: PathBuf::from(protocol::DEFAULT_SOCKET),
        config: None,
        json: false,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--" => {
                parsed.positional.extend(iter.cloned());
                break;
            }
            "--socket" => {
                parsed.socket =
                    iter.next().ok_or(Failure::Usage("--socket needs a path".into()))?.into()
            }
            "--config" => {
                parsed.config =
                    Some(iter.next().ok_or(Failure::Usage("--config needs a file".into()))?.into())
            }
            "--json" => parsed.json = true,
            flag if flag.starts_with("--") => {
                return Err(Failure::Usage(text!("unknown option ", wanmon::json::quoted(flag))));
            }
            _ => parsed.positional.push(arg.clone()),
        }
    }
    Ok(parsed)
}

fn dispatch(args: &[String]) -> Result<(), Failure> {
    let Some(command) = args.first() else {
        return Err(Failure::Usage("no command given".into()));
    };
    if command == "--version" || command == "-V" {
        write_out(1, concat!("wanmon ", env!("CARGO_PKG_VERSION"), "\n"));
        return Ok(());
    }
    if command == "--help" || command == "-h" || command == "help" {
        write_out(1, &text!(USAGE, "\n"));
        return Ok(());
    }
    let w = words(&args[1..])?;
    let extra = |expected: usize| -> Result<(), Failure> {
        if w.positional.len() == expected {
            Ok(())
        } else {
            Err(Failure::Usage(text!(
                command,
                ": expected ",
                expected,
                " argument(s), got ",
                w.positional.len()
            )))
        }
    };
    let call = |request: Request| -> Result<(), Failure> {
        let answer = protocol::call(&w.socket, &request).map_err(|e| Failure::Failed(text!(e)))?;
        write_out(1, &answer);
        if !answer.ends_with('\n') {
            write_out(1, "\n");
        }
        Ok(())
    };
    match command.as_str() {
        "run" => {
            extra(0)?;
            let config =
                w.config.clone().ok_or(Failure::Usage("run needs --config FILE".into()))?;
            run::run(run::Options { config, socket: w.socket.clone() })
                .map_err(|e| Failure::Failed(text!("wanmon: ", e)))
        }
        "status" => {
            extra(0)?;
            call(Request::Status { json: w.json })
        }
        "force" => {
            extra(1)?;
            call(Request::Force(w.positional[0].clone()))
        }
        "auto" => {
            extra(0)?;
            call(Request::Auto)
        }
        "reload" => {
            extra(0)?;
            call(Request::Reload)
        }
        "check-config" => {
            extra(1)?;
            check_config(&w.positional[0])
        }
        other => Err(Failure::Usage(text!("unknown command ", wanmon::json::quoted(other)))),
    }
}

/// Validates a config file and prints its errors with their lines and key paths.
fn check_config(path: &str) -> Result<(), Failure> {
    let links = wanmon::core::Links::FromZoneIfMissing;
    match wanmon::config_file::load(std::path::Path::new(path), links) {
        Ok(config) if config.links.is_empty() => {
            write_out(1, &text!(path, ": ok, links from the firewall zone wan\n"));
            Ok(())
        }
        Ok(config) => {
            let names: Vec<&str> = config.links.iter().map(|l| l.name.as_str()).collect();
            write_out(
                1,
                &text!(
                    path,
                    ": ok, ",
                    names.len(),
                    " links: ",
                    wanmon::text::comma_separated(&names),
                    "\n"
                ),
            );
            Ok(())
        }
        Err(refused) => Err(Failure::Failed(text!(
            refused,
            "\n",
            path,
            ": ",
            refused.errors,
            " error(s), config refused"
        ))),
    }
}
