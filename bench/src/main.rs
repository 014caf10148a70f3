//! `lifeboat-bench`: load generator for SMTP, IMAP and POP3 servers.

fn main() {
    eprintln!("lifeboat-bench: not yet implemented");
    std::process::exit(2);
}
