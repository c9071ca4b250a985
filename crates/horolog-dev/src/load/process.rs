//! The operator's process as the kernel sees it: CPU time and peak memory from /proc, and a
//! locally spawned operator (`--spawn-operator`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

use super::LoadTestError;

/// Clock ticks per second, the unit of /proc/PID/stat's CPU times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockTicks {
    /// Ticks per second.
    pub per_second: u64,
    /// True when `getconf CLK_TCK` gave no answer and 100 (Linux's USER_HZ everywhere that
    /// matters) was assumed.
    pub assumed: bool,
}

impl ClockTicks {
    /// Asks `getconf CLK_TCK`: the value is a property of the kernel ABI, and reading it
    /// through libc would need unsafe code, which this crate forbids.
    pub fn detect() -> Self {
        let answer = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0);
        match answer {
            Some(per_second) => ClockTicks {
                per_second,
                assumed: false,
            },
            None => ClockTicks {
                per_second: 100,
                assumed: true,
            },
        }
    }
}

/// One reading of a process's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// VmHWM: the peak resident set size since the process started, in KiB.
    pub peak_rss_kib: Option<u64>,
    /// VmRSS: the resident set size now, in KiB.
    pub rss_kib: Option<u64>,
}

/// utime + stime from the text of /proc/PID/stat. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn cpu_ticks_from_stat(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    utime.checked_add(stime)
}

/// The value in KiB of a `Key:   1234 kB` line of /proc/PID/status.
pub fn kib_from_status(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Reads the counters of process `pid`.
pub fn read_sample(pid: u32) -> std::io::Result<ProcSample> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(dir.join("stat"))?;
    let status = std::fs::read_to_string(dir.join("status"))?;
    let cpu_ticks = cpu_ticks_from_stat(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat has no CPU times"),
        )
    })?;
    Ok(ProcSample {
        cpu_ticks,
        peak_rss_kib: kib_from_status(&status, "VmHWM"),
        rss_kib: kib_from_status(&status, "VmRSS"),
    })
}

/// The operator's resource use, as the report shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorUsage {
    /// The process measured.
    pub pid: u32,
    /// True when the bench started it (`--spawn-operator`).
    pub spawned: bool,
    /// CPU seconds spent while the bench created its objects.
    pub cpu_seconds_creating: Option<f64>,
    /// CPU seconds spent during the observation window.
    pub cpu_seconds_window: Option<f64>,
    /// `cpuSecondsWindow` divided by the window's length: cores kept busy on average.
    pub average_cores_window: Option<f64>,
    /// CPU seconds since the process started, at the window's end.
    pub cpu_seconds_total: Option<f64>,
    /// Peak resident memory since the process started (VmHWM), in MiB.
    pub peak_rss_mib: Option<f64>,
    /// Resident memory at the window's end (VmRSS), in MiB.
    pub rss_mib_end: Option<f64>,
    /// Clock ticks per second used to convert CPU times.
    pub clk_tck: u64,
    /// True when `clkTck` is the assumed 100, not the system's answer.
    pub clk_tck_assumed: bool,
}

impl OperatorUsage {
    /// Usage from samples taken when creation began, when the window began and when it ended;
    /// any of them may be missing (the process was gone or unreadable).
    pub fn from_samples(
        pid: u32,
        ticks: ClockTicks,
        creating: Option<ProcSample>,
        window_start: Option<ProcSample>,
        window_end: Option<ProcSample>,
        window_seconds: f64,
    ) -> Self {
        let per_second = ticks.per_second.max(1) as f64;
        let between = |a: Option<ProcSample>, b: Option<ProcSample>| {
            Some(b?.cpu_ticks.saturating_sub(a?.cpu_ticks) as f64 / per_second)
        };
        let cpu_seconds_window = between(window_start, window_end);
        OperatorUsage {
            pid,
            spawned: false,
            cpu_seconds_creating: between(creating, window_start),
            cpu_seconds_window,
            average_cores_window: cpu_seconds_window
                .filter(|_| window_seconds > 0.0)
                .map(|s| s / window_seconds),
            cpu_seconds_total: window_end.map(|s| s.cpu_ticks as f64 / per_second),
            peak_rss_mib: window_end.and_then(|s| s.peak_rss_kib).map(|k| k as f64 / 1024.0),
            rss_mib_end: window_end.and_then(|s| s.rss_kib).map(|k| k as f64 / 1024.0),
            clk_tck: ticks.per_second,
            clk_tck_assumed: ticks.assumed,
        }
    }
}

/// An operator this load test started as `horolog run`.
#[derive(Debug)]
pub struct SpawnedOperator {
    child: tokio::process::Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// `horolog` next to the running executable (`target/<profile>/` holds both), else `horolog`
/// from PATH.
fn operator_binary() -> std::io::Result<PathBuf> {
    let beside = std::env::current_exe()?.with_file_name(format!("horolog{}", std::env::consts::EXE_SUFFIX));
    Ok(if beside.is_file() {
        beside
    } else {
        PathBuf::from("horolog")
    })
}

impl SpawnedOperator {
    /// Starts `horolog run` (the `horolog` binary beside this executable, as cargo builds
    /// them, or else the one on PATH) with this process's environment, so it talks to the same
    /// cluster through the same kubeconfig; its output goes to `log`.
    pub fn start(log: &Path, metrics_addr: &str) -> Result<Self, LoadTestError> {
        let exe = operator_binary().map_err(|source| LoadTestError::SpawnOperator {
            what: "finding this executable".into(),
            source,
        })?;
        let file = std::fs::File::create(log).map_err(|source| LoadTestError::SpawnOperator {
            what: format!("creating its log {}", log.display()),
            source,
        })?;
        let stderr = file.try_clone().map_err(|source| LoadTestError::SpawnOperator {
            what: format!("opening its log {}", log.display()),
            source,
        })?;
        let child = tokio::process::Command::new(&exe)
            .arg("run")
            .arg(format!("--metrics-addr={metrics_addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(stderr))
            // Ctrl-C goes to the whole process group; the bench stops the operator itself, after
            // cleanup, so the operator can still process deletions meanwhile.
            .process_group(0)
            // If the bench itself dies, do not leave an operator running behind it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LoadTestError::SpawnOperator {
                what: format!("starting {} run", exe.display()),
                source,
            })?;
        Ok(SpawnedOperator {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its exit status, if it has already exited (a crash during the bench).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Asks it to stop with SIGTERM (the operator's graceful shutdown), and kills it if it has
    /// not exited within `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            // `kill` the command: sending a signal from Rust without libc needs unsafe code.
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// A free loopback address for a spawned operator's metrics server: a port the system hands
/// out and this function releases again (another process could take it meanwhile; the operator
/// would then fail to start and the bench says so).
pub fn free_loopback_addr() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// How long reading the operator's metrics may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator's `/metrics` at `addr` (`host:port`), over plain HTTP/1.0: one request, read to
/// the end of the connection.
pub async fn operator_metrics(addr: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let scrape = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        http_body(&String::from_utf8_lossy(&response))
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, scrape)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))?
}

/// The body of an HTTP response that must be a 200.
fn http_body(response: &str) -> std::io::Result<String> {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(std::io::Error::other(format!("answered {status:?}")));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_command_names() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100 1000 200";
        let cases = [
            (format!("1234 (horolog) {tail}"), Some(300)),
            (format!("1234 (my (odd) name) {tail}"), Some(300)),
            (format!("1234 (a b) {tail}"), Some(300)),
            ("1234 (horolog) S 1 2".to_string(), None),
            ("garbage".to_string(), None),
        ];
        for (stat, want) in cases {
            assert_eq!(cpu_ticks_from_stat(&stat), want, "{stat}");
        }
    }

    #[test]
    fn status_values_are_read_in_kib_by_key() {
        let status = "Name:\thorolog\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t   65536 kB\n";
        let cases = [
            ("VmHWM", Some(123_456)),
            ("VmRSS", Some(65_536)),
            ("VmSwap", None),
            ("Name", None),
        ];
        for (key, want) in cases {
            assert_eq!(kib_from_status(status, key), want, "{key}");
        }
    }

    #[test]
    fn usage_splits_cpu_time_between_creation_and_window() {
        let sample = |cpu_ticks, peak| ProcSample {
            cpu_ticks,
            peak_rss_kib: Some(peak),
            rss_kib: Some(peak / 2),
        };
        let ticks = ClockTicks {
            per_second: 100,
            assumed: true,
        };
        let usage = OperatorUsage::from_samples(
            7,
            ticks,
            Some(sample(1_000, 10_240)),
            Some(sample(1_500, 20_480)),
            Some(sample(7_500, 131_072)),
            300.0,
        );
        assert_eq!(usage.cpu_seconds_creating, Some(5.0));
        assert_eq!(usage.cpu_seconds_window, Some(60.0));
        assert_eq!(usage.average_cores_window, Some(0.2));
        assert_eq!(usage.cpu_seconds_total, Some(75.0));
        assert_eq!(usage.peak_rss_mib, Some(128.0));
        assert_eq!(usage.rss_mib_end, Some(64.0));
        assert!(usage.clk_tck_assumed);
    }

    #[test]
    fn usage_without_a_final_sample_reports_no_numbers() {
        let ticks = ClockTicks {
            per_second: 100,
            assumed: false,
        };
        let usage = OperatorUsage::from_samples(7, ticks, None, None, None, 300.0);
        assert_eq!(usage.cpu_seconds_window, None);
        assert_eq!(usage.peak_rss_mib, None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sample = read_sample(std::process::id()).expect("/proc of this process is readable");
        assert!(sample.peak_rss_kib.is_some_and(|k| k > 0));
    }

    #[test]
    fn an_http_response_gives_its_body_only_when_it_is_a_200() -> std::io::Result<()> {
        let ok = "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nmetric 1\n";
        assert_eq!(http_body(ok)?, "metric 1\n");
        let not_found = "HTTP/1.1 404 Not Found\r\n\r\nno";
        assert!(http_body(not_found).is_err());
        assert!(http_body("garbage").is_err());
        Ok(())
    }

    #[tokio::test]
    async fn an_operator_that_does_not_answer_is_an_error_naming_why() -> std::io::Result<()> {
        // A port just released: nothing listens there.
        let addr = free_loopback_addr()?;
        let result = operator_metrics(&addr).await;
        assert!(
            matches!(&result, Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused),
            "{result:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_operators_metrics_are_read_over_http() -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await?;
            let mut request = [0u8; 1024];
            let n = conn.read(&mut request).await?;
            conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nhorolog_api_requests_total{verb=\"create\",resource=\"pods\",code=\"201\"} 3\n")
                .await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&request[..n]).to_string())
        });
        let text = operator_metrics(&addr).await?;
        assert_eq!(
            super::super::WriteCounts::from_operator(&text).0.get("pods"),
            Some(&3.0)
        );
        let request = server.await.map_err(std::io::Error::other)??;
        assert!(request.starts_with("GET /metrics HTTP/1.0\r\n"), "{request}");
        Ok(())
    }
}
