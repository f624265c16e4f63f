//! Real services the tests talk to, on 127.0.0.1 only.
//!
//! An S3-compatible server: moto (`pip install 'moto[server]'`), one per
//! test binary, started on first use on a free port and stopped when the
//! test binary exits (its parent-death signal), unless `PIPE_TEST_S3`
//! names one already running (`http://127.0.0.1:PORT`). Each test makes
//! its own bucket, so tests share the server without seeing each other.
//!
//! A Slurm cluster of one node: `slurmctld` and `slurmd` (`apt-get install
//! slurmctld slurmd slurm-client`), one pair per test binary, configured in
//! a temporary directory (loopback, free ports, no authentication or
//! accounting, 2 CPUs) and stopped when the test binary exits, unless
//! `PIPE_TEST_SLURM_CONF` names the `slurm.conf` of one already running.
//!
//! Where a service is missing, its tests say so and pass, unless
//! `PIPE_REQUIRE_SERVICES` is set (as `.ci/run` sets it): then they fail.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running S3-compatible server.
pub struct S3 {
    pub endpoint: String,
    port: u16,
}

/// Says that a service is missing: a skip, or a failure under CI.
#[track_caller]
pub fn missing(what: &str) {
    if std::env::var_os("PIPE_REQUIRE_SERVICES").is_some() {
        panic!("{what} is required (PIPE_REQUIRE_SERVICES is set) but missing");
    }
    eprintln!("skipped: {what} is not available here");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Starts `moto_server` on a free port with extra environment `env`, from
/// a thread that lives as long as the test binary: the server gets SIGTERM
/// when the binary exits.
pub fn start_moto(env: &[(&str, &str)]) -> Option<S3> {
    let port = free_port();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = Command::new("moto_server");
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let started = command.spawn();
        let ok = started.is_ok();
        let _ = tx.send(ok);
        if let Ok(mut child) = started {
            // This thread is the server's parent: it must not end first.
            let _ = child.wait();
        }
    });
    if !rx.recv().unwrap_or(false) || !wait_for_port(port, Duration::from_secs(20)) {
        return None;
    }
    Some(S3 {
        endpoint: format!("http://127.0.0.1:{port}"),
        port,
    })
}

/// The shared S3 server, if there is one.
pub fn s3() -> Option<&'static S3> {
    static SERVER: OnceLock<Option<S3>> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("PIPE_TEST_S3") {
            let port = endpoint
                .rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok())
                .expect("PIPE_TEST_S3 is http://127.0.0.1:PORT");
            return Some(S3 { endpoint, port });
        }
        start_moto(&[])
    });
    if server.is_none() {
        missing("an S3-compatible server (`pip install 'moto[server]'`)");
    }
    server.as_ref()
}

/// The access key id the tests use. moto does not check signatures, but it
/// does check that an object's writer is its owner, named by this key.
pub const ACCESS_KEY_ID: &str = "test-key-id";

/// A bare-bones HTTP/1.1 exchange with the server, as the tests' access
/// key (moto checks no signature). Returns the status and body.
pub fn http(s3: &S3, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", s3.port)).expect("connect to the S3 server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s3.port,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("receive");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let status_line = String::from_utf8_lossy(&response[..split]);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let mut body = response[split + 4..].to_vec();
    if status_line
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    (status, body)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

impl S3 {
    /// Creates a bucket with a name no other test uses.
    pub fn bucket(&self, tag: &str) -> String {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("t-{tag}-{}-{n}", std::process::id()).to_lowercase();
        let (status, body) = http(self, "PUT", &format!("/{name}"), b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        name
    }

    /// The keys in `bucket` (below `prefix`), sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = String::new();
        loop {
            let mut path = format!("/{bucket}?list-type=2&prefix={prefix}");
            if !token.is_empty() {
                path.push_str(&format!("&continuation-token={token}"));
            }
            let (status, body) = http(self, "GET", &path, b"");
            assert_eq!(status, 200);
            let text = String::from_utf8_lossy(&body).into_owned();
            for part in text.split("<Key>").skip(1) {
                keys.push(part.split("</Key>").next().unwrap_or_default().to_string());
            }
            match text
                .split("<NextContinuationToken>")
                .nth(1)
                .and_then(|r| r.split("</NextContinuationToken>").next())
            {
                Some(t) => {
                    token = t
                        .replace('+', "%2B")
                        .replace('/', "%2F")
                        .replace('=', "%3D")
                }
                None => break,
            }
        }
        keys.sort();
        keys
    }
}

/// A running single-node Slurm cluster.
pub struct Slurm {
    /// Its `slurm.conf`: `SLURM_CONF` for `sbatch`, `squeue`, … and pipe.
    pub conf: std::path::PathBuf,
}

/// Starts `program args…` with `SLURM_CONF`, from a thread that lives as
/// long as the test binary: the daemon gets SIGTERM when the binary exits.
fn start_daemon(
    program: &str,
    args: &[&str],
    conf: &std::path::Path,
    log: std::path::PathBuf,
) -> bool {
    let (program, args, conf) = (
        program.to_string(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        conf.to_path_buf(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = Command::new(&program);
        let log = std::fs::File::create(log)
            .map(Stdio::from)
            .unwrap_or(Stdio::null());
        command
            .args(&args)
            .env("SLURM_CONF", &conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let started = command.spawn();
        let _ = tx.send(started.is_ok());
        if let Ok(mut child) = started {
            let _ = child.wait();
        }
    });
    rx.recv().unwrap_or(false)
}

const SLURM_DIR_PREFIX: &str = "pipe-slurm-test.";

/// Removes the cluster directories of test binaries that have exited.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(SLURM_DIR_PREFIX));
        let owner = std::fs::read_to_string(path.join("owner"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        let alive = owner.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if ours && owner.is_some() && !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// `sinfo -h -o %T` of the cluster.
fn node_state(conf: &std::path::Path) -> String {
    Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .env("SLURM_CONF", conf)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// What a cluster's `slurm.conf` says about memory.
struct MemoryPolicy {
    select: &'static str,
    /// More lines of `slurm.conf`.
    extra: &'static str,
}

/// The shared cluster's: CPUs only, nothing measured (as the cluster
/// executor's issue lays it out).
const CPUS_ONLY: MemoryPolicy = MemoryPolicy {
    select: "CR_CPU",
    extra: "JobAcctGatherType=jobacct_gather/none\n",
};

/// A cluster that kills a job over its `--mem`, as a site's would: memory
/// is a consumable, and `jobacct_gather/linux` looks every second
/// (`OverMemoryKill`; there are no cgroups here).
const ENFORCED: MemoryPolicy = MemoryPolicy {
    select: "CR_CPU_Memory",
    extra: "JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherParams=OverMemoryKill\nJobAcctGatherFrequency=task=1\nDefMemPerCPU=200\n",
};

fn start_slurm(memory: &MemoryPolicy) -> Option<Slurm> {
    // (The client tools need a configuration even for `-V`: they only
    // have to be there.)
    let installed = |p: &str| {
        Command::new(p)
            .arg("-V")
            .env("SLURM_CONF", "/dev/null")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !["slurmctld", "slurmd", "sbatch"]
        .iter()
        .all(|p| installed(p))
    {
        return None;
    }
    // The directory outlives the test binary (its daemons may still be
    // writing as it exits): the next binary removes those whose owner is
    // gone.
    remove_stale_clusters();
    let dir = tempfile::Builder::new()
        .prefix(SLURM_DIR_PREFIX)
        .tempdir()
        .ok()?
        .keep();
    std::fs::write(dir.join("owner"), std::process::id().to_string()).ok()?;
    let host = Command::new("hostname")
        .arg("-s")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|h| !h.is_empty())?;
    for sub in ["state", "spool"] {
        std::fs::create_dir_all(dir.join(sub)).ok()?;
    }
    let d = dir.display();
    let conf = dir.join("slurm.conf");
    let text = format!(
        "ClusterName=pipetest\n\
         SlurmctldHost={host}(127.0.0.1)\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         AuthType=auth/none\n\
         CredType=cred/none\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         {}\
         AccountingStorageType=accounting_storage/none\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters={}\n\
         MailProg=/bin/true\n\
         SlurmctldPort={}\n\
         SlurmdPort={}\n\
         StateSaveLocation={d}/state\n\
         SlurmdSpoolDir={d}/spool\n\
         SlurmctldPidFile={d}/slurmctld.pid\n\
         SlurmdPidFile={d}/slurmd.pid\n\
         SlurmctldLogFile={d}/slurmctld.log\n\
         SlurmdLogFile={d}/slurmd.log\n\
         ReturnToService=2\n\
         KillWait=1\n\
         NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN\n\
         PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        memory.extra,
        memory.select,
        free_port(),
        free_port(),
    );
    std::fs::write(&conf, text).ok()?;
    if !start_daemon(
        "slurmctld",
        &["-D", "-i"],
        &conf,
        dir.join("slurmctld.stderr"),
    ) || !start_daemon("slurmd", &["-D"], &conf, dir.join("slurmd.stderr"))
    {
        return None;
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if node_state(&conf) == "idle" {
            return Some(Slurm { conf });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("slurm did not come up: see the logs in {d}");
    None
}

/// The shared Slurm cluster, if there is one.
/// A second cluster, for the one test that needs memory enforced (it
/// changes how every job is scheduled, so the shared one does not).
pub fn slurm_enforcing_memory() -> Option<&'static Slurm> {
    static CLUSTER: OnceLock<Option<Slurm>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| start_slurm(&ENFORCED));
    if cluster.is_none() {
        missing("a Slurm cluster (`apt-get install slurmctld slurmd slurm-client`, as root)");
    }
    cluster.as_ref()
}

pub fn slurm() -> Option<&'static Slurm> {
    static CLUSTER: OnceLock<Option<Slurm>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| match std::env::var_os("PIPE_TEST_SLURM_CONF") {
        Some(conf) => Some(Slurm { conf: conf.into() }),
        None => start_slurm(&CPUS_ONLY),
    });
    if cluster.is_none() {
        missing("a Slurm cluster (`apt-get install slurmctld slurmd slurm-client`, as root)");
    }
    cluster.as_ref()
}

impl Slurm {
    /// Runs a Slurm client command (`squeue`, `scontrol`) and returns its
    /// stdout.
    pub fn tool(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The job's state in `scontrol show job`, e.g. `CANCELLED`.
    pub fn job_state(&self, id: &str) -> String {
        let out = self.tool("scontrol", &["show", "job", "-o", id]);
        out.split_whitespace()
            .find_map(|f| f.strip_prefix("JobState="))
            .unwrap_or_default()
            .to_string()
    }
}
