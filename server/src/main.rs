//! The `lifeboat` binary: configuration, command line and wiring.

fn main() {
    eprintln!("lifeboat: not yet implemented");
    std::process::exit(2);
}
