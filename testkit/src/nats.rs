//! Real `nats-server` processes for the cluster tests: a JetStream cluster of `n`
//! servers on free loopback ports, each in a directory of its own, killed (SIGKILL) and
//! restarted at will; every process it started is stopped when it is dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One server's ports and files.
struct Server {
    client_port: u16,
    cluster_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A JetStream cluster of nats-server processes.
pub struct NatsCluster {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    crate::listener().local_addr().unwrap().port()
}

impl NatsCluster {
    /// Starts `n` servers and waits until JetStream answers on each.
    pub fn start(n: usize) -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        // Chosen together so they differ.
        let holders: Vec<TcpListener> = (0..2 * n).map(|_| crate::listener()).collect();
        let ports: Vec<u16> = holders
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(holders);
        let servers = (0..n)
            .map(|i| Server {
                client_port: ports[2 * i],
                cluster_port: ports[2 * i + 1],
                dir: dir.path().join(format!("n{}", i + 1)),
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster { servers, _dir: dir };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster.wait_ready();
        cluster
    }

    fn config(&self, i: usize) -> String {
        let s = &self.servers[i];
        let routes: Vec<String> = self
            .servers
            .iter()
            .map(|o| format!("nats-route://127.0.0.1:{}", o.cluster_port))
            .collect();
        let cluster = if self.servers.len() > 1 {
            format!(
                "cluster {{\n  name: lifeboat\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                s.cluster_port,
                routes.join(", ")
            )
        } else {
            String::new()
        };
        format!(
            "server_name: n{}\nlisten: 127.0.0.1:{}\nmax_payload: 64MB\n\
             jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 4GB }}\n{cluster}",
            i + 1,
            s.client_port,
            s.dir.display(),
        )
    }

    fn spawn(&mut self, i: usize) {
        std::fs::create_dir_all(&self.servers[i].dir).unwrap();
        let config_path = self.servers[i].dir.join("nats.conf");
        std::fs::write(&config_path, self.config(i)).unwrap();
        let log = std::fs::File::create(self.servers[i].dir.join("nats.log")).unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server is installed (scripts/test installs Debian's package)");
        self.servers[i].child = Some(child);
    }

    /// Waits until every running server takes client connections and the cluster has
    /// a JetStream meta leader.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for (i, s) in self.servers.iter().enumerate() {
            if s.child.is_none() {
                continue;
            }
            while std::net::TcpStream::connect(("127.0.0.1", s.client_port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "nats-server n{} did not come up:\n{}",
                    i + 1,
                    self.log(i)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        while !self
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.child.is_some())
            .any(|(i, _)| {
                let log = self.log(i);
                log.contains("JetStream cluster new metadata leader")
                    || log.contains("Self is new JetStream cluster metadata leader")
                    || (self.servers.len() == 1 && log.contains("Server is ready"))
            })
        {
            assert!(Instant::now() < deadline, "no JetStream meta leader");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.servers[i].dir.join("nats.log")).unwrap_or_default()
    }

    /// Client URLs of every server, `nats://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.client_port))
            .collect()
    }

    /// SIGKILL of server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again with its data.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready();
    }

    /// Whether server `i` runs.
    pub fn running(&self, i: usize) -> bool {
        self.servers[i].child.is_some()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    free_port()
}
