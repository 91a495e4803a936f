//! A local X-Ray "console": listens where the daemon would and prints each
//! document as an indented tree as it arrives (name, namespace, duration bar,
//! status and flags, the `aws` fields, annotations, the cause).
//!
//! ```text
//! cargo run --example xray_viewer                      # 127.0.0.1:2000
//! cargo run --example xray_viewer -- --listen 127.0.0.1:3000 --json
//! ```
//! Point an application at it with `AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000`.

#[path = "support/viewer.rs"]
mod viewer;

fn main() {
    let mut listen = "127.0.0.1:2000".to_string();
    let mut mode = viewer::Mode::Tree;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            "--json" => mode = viewer::Mode::Json,
            "-h" | "--help" => {
                println!("xray_viewer [--listen HOST:PORT] [--json]");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                std::process::exit(2);
            }
        }
    }
    let addr = match listen.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("--listen {listen:?}: {e}");
            std::process::exit(2);
        }
    };
    let socket = match viewer::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("listening on udp://{addr} (as the X-Ray daemon would)");
    viewer::serve(&socket, mode, || true);
}
