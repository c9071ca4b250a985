//! Shell completion: `kubectl horolog completion bash|zsh|fish` prints a script for the
//! `kubectl-horolog` command (clap_complete), and `kubectl_complete-horolog`, the executable
//! kubectl (1.26+) runs for `kubectl horolog <TAB>`, answers in Cobra's `__complete` format:
//! one candidate a line, then `:DIRECTIVE` (4: no file names; 0: the shell's default, for
//! `lint -f`). It completes subcommands, flags, Schedule names (JobRun names for `cancel`,
//! both for `logs`), namespaces after `-n` and formats after `-o`, from the cluster of the
//! command line's `--context`/`--kubeconfig`/`-n`.

use std::io::Write;

use clap::CommandFactory;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::{Cli, Error, Outcome};
use horolog::api::{JobRun, Schedule};

/// The shells `completion` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// bash: `source <(kubectl horolog completion bash)`.
    Bash,
    /// zsh: `source <(kubectl horolog completion zsh)`.
    Zsh,
    /// fish: `kubectl horolog completion fish | source`.
    Fish,
}

/// Writes the completion script of `shell` for the `kubectl-horolog` command.
pub fn script(shell: Shell, out: &mut dyn Write) -> Outcome {
    let mut command = Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut command, "kubectl-horolog", &mut buffer);
    out.write_all(&buffer)?;
    Ok(0)
}

/// What a candidate list is made of, beside the fixed words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Schedule names in the namespace.
    Schedules,
    /// JobRun names in the namespace.
    JobRuns,
    /// Namespace names.
    Namespaces,
    /// CronJob names, as `cronjob/NAME`.
    CronJobs,
}

/// What to offer for the word being completed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Fixed words (subcommands, flags, formats, shells).
    pub words: Vec<String>,
    /// Names to read from the cluster.
    pub sources: Vec<Source>,
    /// Let the shell complete file names (`lint -f`).
    pub files: bool,
}

/// Flags that take a value (the next word is that value, not a subcommand or name).
const VALUE_FLAGS: [&str; 16] = [
    "-n",
    "--namespace",
    "-o",
    "--output",
    "--context",
    "--kubeconfig",
    "-l",
    "--selector",
    "-c",
    "--container",
    "--tail",
    "--since",
    "--count",
    "--timeout",
    "--from",
    "--to",
];

/// What completes the last of `words` (the words after `kubectl horolog`; the last is the
/// partial word, possibly empty).
pub fn wanted(words: &[String]) -> Wanted {
    let (current, before) = match words.split_last() {
        Some((current, before)) => (current.as_str(), before),
        None => ("", &[][..]),
    };
    let command = Cli::command();
    match before.last().map(String::as_str) {
        Some("-n" | "--namespace") => {
            return Wanted {
                sources: vec![Source::Namespaces],
                ..Wanted::default()
            };
        }
        Some("-o" | "--output") => {
            return Wanted {
                words: ["table", "wide", "name", "json", "yaml", "jsonpath="]
                    .map(String::from)
                    .to_vec(),
                ..Wanted::default()
            };
        }
        Some("-f" | "--filename" | "--kubeconfig") => {
            return Wanted {
                files: true,
                ..Wanted::default()
            };
        }
        Some(flag) if VALUE_FLAGS.contains(&flag) => return Wanted::default(),
        _ => {}
    }
    let mut verb = None;
    let mut skip = false;
    for word in before {
        if skip {
            skip = false;
        } else if VALUE_FLAGS.contains(&word.as_str()) {
            skip = true;
        } else if !word.starts_with('-') {
            verb = Some(word.as_str());
            break;
        }
    }
    let flags_of = |command: &clap::Command| -> Vec<String> {
        command
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .flat_map(|a| {
                let long = a.get_long().map(|l| format!("--{l}"));
                let short = a.get_short().map(|s| format!("-{s}"));
                long.into_iter().chain(short)
            })
            .collect()
    };
    let Some(verb) = verb.and_then(|v| command.find_subcommand(v)) else {
        return Wanted {
            words: match current.starts_with('-') {
                true => flags_of(&command),
                false => command
                    .get_subcommands()
                    .filter(|c| !c.is_hide_set())
                    .map(|c| c.get_name().to_string())
                    .filter(|name| name != "help")
                    .collect(),
            },
            ..Wanted::default()
        };
    };
    if current.starts_with('-') {
        let mut words = flags_of(verb);
        for flag in flags_of(&command) {
            if !words.contains(&flag) {
                words.push(flag);
            }
        }
        return Wanted {
            words,
            ..Wanted::default()
        };
    }
    match verb.get_name() {
        "run" | "pause" | "resume" | "history" | "next" | "backfill" | "status" => Wanted {
            sources: vec![Source::Schedules],
            ..Wanted::default()
        },
        "cancel" => Wanted {
            sources: vec![Source::JobRuns],
            ..Wanted::default()
        },
        "logs" => Wanted {
            sources: vec![Source::JobRuns, Source::Schedules],
            ..Wanted::default()
        },
        "convert" => Wanted {
            sources: vec![Source::CronJobs],
            ..Wanted::default()
        },
        "completion" => Wanted {
            words: ["bash", "zsh", "fish"].map(String::from).to_vec(),
            ..Wanted::default()
        },
        "lint" => Wanted {
            words: vec!["-f".into()],
            ..Wanted::default()
        },
        _ => Wanted::default(),
    }
}

/// The candidates for `words` in Cobra's format, names read through `client` (in `namespace`);
/// a cluster that cannot be read gives no names, never an error (completion must not fail).
pub async fn candidates(client: Option<&Client>, namespace: &str, words: &[String]) -> Vec<String> {
    let current = words.last().map(String::as_str).unwrap_or_default();
    let wanted = wanted(words);
    let mut found = wanted.words.clone();
    if let Some(client) = client {
        for source in &wanted.sources {
            found.extend(names(client, namespace, *source).await);
        }
    }
    let mut lines: Vec<String> = found.into_iter().filter(|c| c.starts_with(current)).collect();
    lines.dedup();
    lines.push(match wanted.files {
        true => ":0".to_string(),
        false => ":4".to_string(),
    });
    lines
}

async fn names(client: &Client, namespace: &str, source: Source) -> Vec<String> {
    let params = ListParams::default();
    let listed = match source {
        Source::Schedules => Api::<Schedule>::namespaced(client.clone(), namespace)
            .list_metadata(&params)
            .await
            .map(|l| l.items.iter().map(|m| m.name_any()).collect()),
        Source::JobRuns => Api::<JobRun>::namespaced(client.clone(), namespace)
            .list_metadata(&params)
            .await
            .map(|l| l.items.iter().map(|m| m.name_any()).collect()),
        Source::Namespaces => Api::<Namespace>::all(client.clone())
            .list_metadata(&params)
            .await
            .map(|l| l.items.iter().map(|m| m.name_any()).collect()),
        Source::CronJobs => {
            Api::<k8s_openapi::api::batch::v1::CronJob>::namespaced(client.clone(), namespace)
                .list_metadata(&params)
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .map(|m| format!("cronjob/{}", m.name_any()))
                        .collect()
                })
        }
    };
    let mut names: Vec<String> = listed.unwrap_or_default();
    names.sort();
    names
}

/// `kubectl_complete-horolog`'s main: completes `args` (what kubectl passes after the plugin's
/// name) against the cluster the words name, and prints the answer.
pub fn complete_main(args: Vec<String>) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(_) => return std::process::ExitCode::SUCCESS,
    };
    let lines = runtime.block_on(async {
        // Parse what can be parsed of the words so far for --context, --kubeconfig and -n.
        let settled: Vec<&String> = args.iter().take(args.len().saturating_sub(1)).collect();
        let mut argv = vec!["kubectl-horolog".to_string()];
        argv.extend(settled.iter().map(|s| s.to_string()));
        let connection = connection_of(&argv).await;
        let (client, namespace) = match &connection {
            Some((client, namespace)) => (Some(client), namespace.clone()),
            None => (None, "default".to_string()),
        };
        candidates(client, &namespace, &args).await
    });
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}

/// A client and namespace from the flags in `argv` (the command line so far, which need not
/// parse as a whole: the flags are read one by one).
async fn connection_of(argv: &[String]) -> Option<(Client, String)> {
    let mut flags = vec!["kubectl-horolog".to_string()];
    let mut namespace = None;
    let mut words = argv.iter().skip(1);
    while let Some(word) = words.next() {
        let value = |w: &mut dyn Iterator<Item = &String>| w.next().cloned();
        match word.as_str() {
            "--context" | "--kubeconfig" => {
                if let Some(v) = value(&mut words) {
                    flags.extend([word.clone(), v]);
                }
            }
            "-n" | "--namespace" => namespace = value(&mut words),
            other => {
                if let Some((flag, v)) = other.split_once('=')
                    && matches!(flag, "--context" | "--kubeconfig" | "--namespace")
                {
                    match flag {
                        "--namespace" => namespace = Some(v.to_string()),
                        _ => flags.extend([flag.to_string(), v.to_string()]),
                    }
                }
            }
        }
    }
    flags.extend(["lint".to_string(), "-f".to_string(), "-".to_string()]);
    let cli = Cli::try_parse_from_words(&flags).ok()?;
    let (client, default_namespace): (Client, String) = cli.connect().await.ok()?;
    Some((client, namespace.unwrap_or(default_namespace)))
}

impl Cli {
    fn try_parse_from_words(words: &[String]) -> Result<Cli, Error> {
        <Cli as clap::Parser>::try_parse_from(words).map_err(|e| Error::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut words: Vec<String> = text.split_whitespace().map(String::from).collect();
        if text.ends_with(' ') || text.is_empty() {
            words.push(String::new());
        }
        words
    }

    #[test]
    fn subcommands_then_names_then_flags() {
        let first = wanted(&words(""));
        assert!(first.words.contains(&"status".to_string()), "{first:?}");
        assert!(first.words.contains(&"completion".to_string()));
        assert!(first.sources.is_empty());
        assert_eq!(wanted(&words("pause ")).sources, [Source::Schedules]);
        assert_eq!(wanted(&words("-n prod status ")).sources, [Source::Schedules]);
        assert_eq!(wanted(&words("cancel ")).sources, [Source::JobRuns]);
        assert_eq!(wanted(&words("status -n ")).sources, [Source::Namespaces]);
        assert!(
            wanted(&words("history x -o "))
                .words
                .contains(&"jsonpath=".to_string())
        );
        let flags = wanted(&words("logs x --t")).words;
        assert!(
            flags.contains(&"--tail".to_string()) && flags.contains(&"--previous".to_string()),
            "{flags:?}"
        );
        assert!(wanted(&words("lint -f ")).files);
        assert_eq!(wanted(&words("completion ")).words, ["bash", "zsh", "fish"]);
    }
}
