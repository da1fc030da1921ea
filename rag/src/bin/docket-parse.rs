//! `docket-parse`: parses one file from stdin under CPU and memory limits and prints the
//! result as JSON. Started by the worker for every PDF (`docket_rag::parse::bounded`); not
//! meant to be run by hand.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reply = docket_rag::parse::bounded::run_child(&args, || {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    });
    match reply {
        Ok(reply) => {
            let mut out = std::io::stdout().lock();
            let written = serde_json::to_writer(&mut out, &reply)
                .map_err(std::io::Error::from)
                .and_then(|()| out.flush());
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("docket-parse: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("docket-parse: {e}");
            ExitCode::from(2)
        }
    }
}
