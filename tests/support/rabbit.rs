//! RabbitMQ for the receive tests (receive, the chain, the probe, status' broker): a vhost of
//! one test on the machine's broker (127.0.0.1:5672, guest/guest), pika (tests/support/amqp.py)
//! publishing as the register agent does, and a second RabbitMQ node of the test's own (its
//! node name, ports, config, data and logs in a temporary directory, a TLS listener when
//! asked), stopped and removed when dropped. Included with `#[path]` by the tests that use it.
#![allow(dead_code)]

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant, SystemTime},
};

use serde_json::{json, Value};

pub const PYTHON: &str = "/usr/bin/python3";
pub const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/amqp.py");

/// `rabbitmqctl ARGS` (of the machine's node unless ARGS name another with `-n`); panics
/// with what it said when it fails.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl (the RabbitMQ server: scripts/test.sh installs and starts it)");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the machine's node has the shovel plugin on (scripts/lib/rabbitmq.sh enables it).
pub fn assert_shovel_plugin() {
    let out = Command::new("rabbitmqctl").args(["-q", "shovel_status"]).output().expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "the local RabbitMQ has no shovel plugin: run the tests through scripts/test.sh (it runs \
         `rabbitmq-plugins enable rabbitmq_shovel`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static VHOSTS: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("csjobs_t_{tag}_{}_{}_{nanos}", std::process::id(), VHOSTS.fetch_add(1, Ordering::SeqCst))
}

/// A broker endpoint the helper talks to: an AMQP URL.
pub trait Amqp {
    fn url(&self) -> String;

    fn helper(&self, args: &[&str]) -> Command {
        let mut c = Command::new(PYTHON);
        c.arg(HELPER).arg(args[0]).arg(self.url()).args(&args[1..]);
        c
    }

    /// Messages ready in `queue` (a passive declare: the queue's own count).
    fn ready(&self, queue: &str) -> u64 {
        let out = self.helper(&["ready", queue]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// `ready`, or `None` when the queue is not there or the broker does not answer.
    fn ready_if_there(&self, queue: &str) -> Option<u64> {
        let out = self.helper(&["ready", queue]).stderr(Stdio::null()).output().unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
    }

    /// Starts publishing `messages` (see tests/support/amqp.py) with confirms, `pace_ms`
    /// apart; it prints "published N" when done.
    fn publisher(&self, messages: &[Value], pace_ms: u32) -> std::process::Child {
        let mut child = self
            .helper(&["publish", &pace_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with pika (python3-pika)");
        let mut stdin = child.stdin.take().unwrap();
        let lines: String = messages.iter().map(|m| format!("{m}\n")).collect();
        std::thread::spawn(move || {
            let _ = stdin.write_all(lines.as_bytes());
        });
        child
    }

    /// Publishes `messages` with confirms, all of them before it returns.
    fn publish(&self, messages: &[Value]) {
        let out = self.publisher(messages, 0).wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains(&format!("published {}", messages.len())), "{said}");
    }

    /// Takes every message of `queue`.
    fn get(&self, queue: &str) -> Vec<Value> {
        let out = self.helper(&["get", queue]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// A vhost of one test on the machine's broker, deleted with it (its queues and shovels too).
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn new(tag: &str) -> Vhost {
        let name = unique(tag);
        rabbitmqctl(&["-q", "add_vhost", &name]);
        rabbitmqctl(&["-q", "set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Vhost { name }
    }

    /// The queues of the vhost, sorted.
    pub fn queues(&self) -> Vec<String> {
        let out = rabbitmqctl(&["-q", "list_queues", "-p", &self.name, "--no-table-headers", "name"]);
        let mut v: Vec<String> =
            out.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        v.sort();
        v
    }

    /// Closes every connection to this vhost from the broker's side, as an admin would.
    pub fn close_connections(&self) -> usize {
        let out = rabbitmqctl(&["-q", "list_connections", "--no-table-headers", "pid", "vhost"]);
        let mut n = 0;
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 2 && f[1] == self.name {
                rabbitmqctl(&["-q", "close_connection", f[0], "closed by the test"]);
                n += 1;
            }
        }
        n
    }

    /// The runtime parameters of the vhost, `component/name` each, sorted.
    pub fn parameters(&self) -> Vec<String> {
        let out = rabbitmqctl(&["-q", "list_parameters", "-p", &self.name, "--formatter", "json"]);
        let list: Vec<Value> = serde_json::from_str(out.trim()).unwrap();
        let mut v: Vec<String> = list
            .iter()
            .map(|p| format!("{}/{}", p["component"].as_str().unwrap(), p["name"].as_str().unwrap()))
            .collect();
        v.sort();
        v
    }
}

impl Amqp for Vhost {
    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").args(["-q", "delete_vhost", &self.name]).output();
    }
}

/// A port nobody listens on at this moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A RabbitMQ node of the test's own beside the machine's: its own node name, AMQP port (no
/// management, no plugin), distribution port, config file, data and log directories, all in
/// a temporary directory the rabbitmq user owns (Debian's scripts run the node as that
/// user). Stopped (killed, if need be) and removed when dropped, even when the test fails.
pub struct Node {
    pub name: String,
    pub port: u16,
    /// Its TLS listener (amqps), when started with one.
    pub tls_port: Option<u16>,
    dist_port: u16,
    dir: PathBuf,
}

/// A node's TLS listener: its certificate and key, and the CA whose client certificates it
/// then requires (copied into the node's directory, where the node's user can read them).
pub struct NodeTls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: Option<&'a Path>,
}

impl Node {
    /// Starts a node and waits until it answers.
    pub fn start(tag: &str) -> Node {
        Node::start_with(tag, None)
    }

    /// Starts a node that also takes amqps (RabbitMQ's own TLS listener, on
    /// `127.0.0.1:<tls_port>`, with `tls`'s certificate; a client certificate required when
    /// `tls` names a client CA).
    pub fn start_tls(tag: &str, tls: NodeTls) -> Node {
        Node::start_with(tag, Some(tls))
    }

    fn start_with(tag: &str, tls: Option<NodeTls>) -> Node {
        let pid = std::process::id();
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("csjobs-node-{tag}-{pid}-{nanos}"));
        for sub in ["mnesia", "log"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (port, dist_port) = (free_port(), free_port());
        let mut conf = format!("listeners.tcp.default = 127.0.0.1:{port}\n");
        let tls_port = tls.map(|tls| {
            let tls_port = free_port();
            fs::copy(tls.cert, dir.join("cert.pem")).unwrap();
            fs::copy(tls.key, dir.join("key.pem")).unwrap();
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n",
                dir.join("cert.pem").display(),
                dir.join("key.pem").display()
            ));
            match tls.client_ca {
                Some(ca) => {
                    fs::copy(ca, dir.join("client-ca.pem")).unwrap();
                    conf.push_str(&format!(
                        "ssl_options.cacertfile = {}\n\
                         ssl_options.verify = verify_peer\n\
                         ssl_options.fail_if_no_peer_cert = true\n",
                        dir.join("client-ca.pem").display()
                    ));
                }
                None => conf
                    .push_str("ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n"),
            }
            tls_port
        });
        fs::write(dir.join("rabbitmq.conf"), conf).unwrap();
        fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        let chown = Command::new("chown").args(["-R", "rabbitmq:rabbitmq"]).arg(&dir).status().unwrap();
        assert!(chown.success(), "chown of {} to rabbitmq (the tests run as root)", dir.display());
        let node = Node {
            name: format!("csjobs-test-{tag}-{pid}-{nanos}@localhost"),
            port,
            tls_port,
            dist_port,
            dir,
        };
        node.boot();
        node
    }

    fn env(&self, c: &mut Command) {
        let d = |p: &str| self.dir.join(p);
        c.env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", d("pid"));
    }

    /// `rabbitmqctl -n <node> ARGS`, its output when it succeeded.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("rabbitmqctl").arg("-n").arg(&self.name).args(args).output().unwrap();
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// Starts the node (again: its data stays) and waits until it boots and answers.
    pub fn boot(&self) {
        let mut c = Command::new("rabbitmq-server");
        c.arg("-detached").current_dir("/");
        self.env(&mut c);
        assert!(c.status().unwrap().success(), "rabbitmq-server -detached for {}", self.name);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if self.ctl(&["-q", "await_startup", "--timeout", "60"]).is_ok()
                && self.ctl(&["-q", "status"]).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the node {} did not boot: see {}",
                self.name,
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Stops the node and waits until its process is gone.
    pub fn stop(&self) {
        let pid_file = self.dir.join("pid");
        let said = self.ctl(&["stop", pid_file.to_str().unwrap()]);
        assert!(said.is_ok(), "rabbitmqctl stop {}: {said:?}", self.name);
    }

    /// A user of the node with every permission on `/`.
    pub fn add_user(&self, user: &str, password: &str) {
        self.ctl(&["-q", "add_user", user, password]).unwrap();
        self.ctl(&["-q", "set_permissions", "-p", "/", user, ".*", ".*", ".*"]).unwrap();
    }

    /// The node's `/` vhost as `user` (percent-encoded as given).
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("amqp://{user}:{password}@127.0.0.1:{}/%2F", self.port)
    }
}

impl Amqp for Node {
    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2F", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let pid_file = self.dir.join("pid");
        let pid = fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok());
        if self.ctl(&["-q", "stop", pid_file.to_str().unwrap_or_default()]).is_err() {
            if let Some(p) = pid.and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A message as the register agent sends it: `content` compressed as `compress` says (by
/// Python's gzip and zipfile), headers cashCode, salesId and compressMethod.
pub fn message(content: &[u8], compress: Option<&str>, cash: i64, sales_id: i64) -> Value {
    let mut headers = json!({ "cashCode": cash.to_string(), "salesId": sales_id.to_string() });
    if let Some(c) = compress {
        headers["compressMethod"] = json!(c);
    }
    json!({ "content": hex::encode(content), "compress": compress, "headers": headers,
            "message_id": format!("m-{cash}-{sales_id}") })
}

/// The file name receive.md gives `content`.
pub fn name_of(content: &[u8]) -> String {
    use sha2::Digest;
    format!("amqp-{}.json", &hex::encode(sha2::Sha256::digest(content))[..32])
}

/// Waits (at most `timeout`) until `done`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
